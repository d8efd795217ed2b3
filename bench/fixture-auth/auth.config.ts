// The one auth provider of `convect-bench auth`: a custom JWT issuer whose
// ES256 key the bench generates at each run and publishes as a JWKS data: URI
// in the BENCH_AUTH_JWKS deployment variable before deploying. The bench
// verifies tokens in process against the same provider (bench/src/auth.rs).
export default {
  providers: [
    {
      type: "customJwt",
      issuer: "https://bench.convect.invalid",
      jwks: process.env.BENCH_AUTH_JWKS!,
      algorithm: "ES256",
      applicationID: "convex",
    },
  ],
};
