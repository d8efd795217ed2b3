//! A fixed RSA test key pair (and a second, unrelated private key) for the
//! auth unit tests. Generated once with `openssl genrsa -traditional 2048`;
//! they protect nothing and must never be used outside tests.

/// PKCS#1 private key whose public half is [`RSA_PUBLIC_PEM`] / [`RSA_JWK_N`].
pub const RSA_PRIVATE_PEM: &str = concat!(
    "-----BEGIN RSA PRIVATE KEY-----\n",
    "MIIEowIBAAKCAQEAxNUGo40+56G+1YTaZnrQuVJzamgroISU453hZcBZIKiogxq3\n",
    "41ghG/jgh5UHFWBHRDxRYtuUrF8UwA+eLnS5riiYlQk6/mRw5uhpaFmVPLb5GM5W\n",
    "W6yZvfNR2S6KWRdDtvWXPM6+q1J6OA+e5KPwnpo0I53UzY2zYHX8IPTCtQmSObid\n",
    "61JWxSiYINyqy2pv9evUa+xndL4aIamKrvrRP36r3aN9tXMQJArBrQJ2t6cvx+an\n",
    "X+ljHQsqYEHNlHqW/wyiSE22snXsjV/44QMhfzMZfuyUFdT0jkLz5BCfCYoF8N7E\n",
    "SHBKZWyOfbzoj9iZzbxbgZ+tPY/ALS5dvE+36QIDAQABAoIBAAdpE0XJUbDYEbaZ\n",
    "eL0CuvS9Nk/vYdQaZb4fka66ZAijHOwJr5ppNR7n2vEz0sdS34ABytkfVfy63C3C\n",
    "cMTEO4DjcaIrzasp9ie1YJGPjNszMtPkodLz/7pLbL2R317NDc03uBTPnlVWJriR\n",
    "Wvy18N9RxCyCmtJN107mhkJp4KI+6+9PlMDBAoVv2f2tUkHCl8BJegJVr6wFtC9e\n",
    "nFOyzqViGibLq6uCYVE2kRwrpl4OKyyK0l8YX2T6GRC7JlWuQ32fWfotQi+NjZza\n",
    "nGpq52tEah1KCBxU6bLoOuciDJzUv4ia9euqWB64d5AYL7RO0Xm6VIBbGeNui3OW\n",
    "DpCQJ/ECgYEA8JwObMZzQlDzH1VwGyncBxNlm4qIhOoljcqTH7pVq8aHxiO8+L9G\n",
    "sznxij5VFYwc168/jT9+TGcHvHKJtxkBFopt9In4DO1aCR9rSaxLlZwVQIWoTjh5\n",
    "0HEOxQ5bMw3m+NNm2Q8i5BA6hUcem5uUBmNkDLDS/WkO04Z4Esbst7ECgYEA0Wwe\n",
    "4fU76UJHCin59WsTOgN0nj3hKswhIb0CFmp7lUYMH9obzPYQeJtpws0a9z3tU9wC\n",
    "TDxG4TCFjvdOltFSIqKFe2grHMMMSDx0dJT7AOQUo4GcNv16eLstOacC6dynpLcD\n",
    "EC+jgwo8tMpF+Zaj+WNIrpz2u9YRHZwJmsWVybkCgYB7PmRBIVFueYpe1WOL9mAG\n",
    "m8/i4Q3WjxzXSRkdGlPBnfpz6mBkRY2QRjDLr+vjEpa/f7ucvRYTSn7y7vRNfhhJ\n",
    "lHSH2pfc/0KsA5Tv8rnwkzdrikrQbisvMonvM9BREWDquVYn/pHPoeRn2ir6Z7Fl\n",
    "qElaGsSoGsUGYg1lCNG9sQKBgHQdP65HG5XEgsD27zmMyddDrThD1QG2trQPKQYm\n",
    "uijU8soCU6G72PwWJ3iz4jytoFX7yWZdkWswTQ0sv+1NV/4OIHaBFk5XMwsmQeeV\n",
    "5unijDLwHR48QtiH55ZsrGfgSS9BrbgewclZNrmC4XN2e6o9y0HNk9wn38uMBaND\n",
    "5D45AoGBAO/Z3zZthIaNDWbN32QGa6A20z3hwnPIfaGStyY+iy/4zWXdQJMw8zjs\n",
    "TLV96mTO0FzlwTDzyFonlbA3lLu38nVNjUMJUg5+xU5KnK4rzndd1yfuTXnhXWLa\n",
    "pf8dJkBZMVBSrCDMSutsYLi2+/ddcEwd0ibRjFqPwDdB8kqfCjyd\n",
    "-----END RSA PRIVATE KEY-----\n"
);

/// SubjectPublicKeyInfo PEM of [`RSA_PRIVATE_PEM`]: the "HS256 signed with the
/// public key" attack uses these bytes as an HMAC secret.
pub const RSA_PUBLIC_PEM: &str = concat!(
    "-----BEGIN PUBLIC KEY-----\n",
    "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAxNUGo40+56G+1YTaZnrQ\n",
    "uVJzamgroISU453hZcBZIKiogxq341ghG/jgh5UHFWBHRDxRYtuUrF8UwA+eLnS5\n",
    "riiYlQk6/mRw5uhpaFmVPLb5GM5WW6yZvfNR2S6KWRdDtvWXPM6+q1J6OA+e5KPw\n",
    "npo0I53UzY2zYHX8IPTCtQmSObid61JWxSiYINyqy2pv9evUa+xndL4aIamKrvrR\n",
    "P36r3aN9tXMQJArBrQJ2t6cvx+anX+ljHQsqYEHNlHqW/wyiSE22snXsjV/44QMh\n",
    "fzMZfuyUFdT0jkLz5BCfCYoF8N7ESHBKZWyOfbzoj9iZzbxbgZ+tPY/ALS5dvE+3\n",
    "6QIDAQAB\n",
    "-----END PUBLIC KEY-----\n"
);

/// JWK modulus (base64url) of [`RSA_PRIVATE_PEM`].
pub const RSA_JWK_N: &str = concat!(
    "xNUGo40-56G-1YTaZnrQuVJzamgroISU453hZcBZIKiogxq341ghG_jgh5UHFWBH",
    "RDxRYtuUrF8UwA-eLnS5riiYlQk6_mRw5uhpaFmVPLb5GM5WW6yZvfNR2S6KWRdD",
    "tvWXPM6-q1J6OA-e5KPwnpo0I53UzY2zYHX8IPTCtQmSObid61JWxSiYINyqy2pv",
    "9evUa-xndL4aIamKrvrRP36r3aN9tXMQJArBrQJ2t6cvx-anX-ljHQsqYEHNlHqW",
    "_wyiSE22snXsjV_44QMhfzMZfuyUFdT0jkLz5BCfCYoF8N7ESHBKZWyOfbzoj9iZ",
    "zbxbgZ-tPY_ALS5dvE-36Q",
);

/// JWK exponent (base64url of 65537) of [`RSA_PRIVATE_PEM`].
pub const RSA_JWK_E: &str = "AQAB";

/// An unrelated PKCS#1 key: tokens it signs carry a wrong signature.
pub const OTHER_RSA_PRIVATE_PEM: &str = concat!(
    "-----BEGIN RSA PRIVATE KEY-----\n",
    "MIIEowIBAAKCAQEA5Lzybk7GpKH825WbUv8g7eIFNYeixQ7yNj7uU+qO5LYPstQj\n",
    "fVc3u+Ahb7fUwcbsYWEBFzjO2SjJCCUhIHWToqColvr1LOiRuLxrrqILmu/ZDG+Y\n",
    "yxMGqXN8iwDKQAc2psp8DwHrdvDOorHJjsrtibd8Rvca2WsfyJewuaPSVkUgKsUK\n",
    "2YhsX7ydKTY6mKfvq/L3fRMpu9ZNgHrRBl62tzBnai8DjOhuIupGNsGBuSZ58tjG\n",
    "vvIUdDtN30pZ6l2a1VEp3sUBhWr6Xrw43rrJLRwVZhbR8n8pTc+jy73Cp7oyJ3zD\n",
    "Ui9No96B7Tcv3agxJ5pZANIlIr5WmEEID/bYFQIDAQABAoIBAA/KUWFhs8nSsD4d\n",
    "CPtvnFTU/loQfSE7DmfF7Aruos2mxH+qWwbV5LA7YTjb87vVdnpPHtWnuMkkonga\n",
    "+WX1vUAun2TIz0W537FlOc505ksxqoX2wDv972mhjM6bD9s1WZr7AxnAHq1NI16i\n",
    "L6ausJDfZ0djhel4wS7GS09iv+xE45h4aMTHlqbS5M+dbfmxnloGq5IA0gC4D78g\n",
    "ndVoJM0LNc83KjCu4ciusQIOqD3rypwlU8APR/gU+A4cRbVZ4aECw/Nb57Piwiz3\n",
    "mth24NaylJbmWwhPcl+0xiglpsWZZaQK9FRGqycTJgzEgo3i8U4lwcnWhyKYFAWA\n",
    "9Ve5YtECgYEA+cZjfTNZ/UbP9bEHlA8UWkp/kGVtq7c+/xrHXY4AZEKO/wlmuVTL\n",
    "B2TTxGeQ3Wu9Av5wfOAxhl/6MJc86kYw0lmX9VSLuq5pF2arsBXSW36n6f9+Qn1Y\n",
    "KI1ZJV3GuyHFWhZlks2uh2E/AQw+XC3ot5ULR44mexCNZTIs5o0Csg0CgYEA6nBW\n",
    "zrh8O5m81QxWIeBVuV628N3216CjsN0EqYRYzX+d5fkBxrSUNBOSBXf0clyX/qFY\n",
    "GgiuDNGEDl3ncKmLoVK5YvhnJRIJgz4hFir+qwZVurtQ9LUE5mmKOLPSEKqawawD\n",
    "02msJDceh5uTlmkq8n+9ppKE+wcitvhXs7xYpCkCgYEAxhCEmiabaJW7mOe9y7G9\n",
    "gO/sghN8SRuxj9erWkudkeOZwzGwTKyppv5UUz2RCZRCuNoNV2jsvNLk8Z0sR9ZL\n",
    "JrK3JmrZtrpRSaY35RUYz0b7Xjok5BLDUrzrgQ8A5SmddpemCiiiCmaZ8HnGBZC+\n",
    "Jr3AyQg3CYWRqjqEknolNg0CgYAHWPn/hJywKYNXkglpCmTlaGiHaA2CeJBozKSG\n",
    "w5Uc67EBMiqyFZrHfw2Gilno86n32wqt1jPORwrCgILubwHnTnZs+agR61zM9jeH\n",
    "QFW2+n3ZWmGRKdM7fXdNi6U7zH0JMOD10UwJ3ohga6nWfvlPnF1PSSxNyc12upXV\n",
    "FkQY8QKBgCakfltYoTuWLPENYy11r6GTjq0aDAvdNSILueZx+6j5Ge5rD0O0g2lI\n",
    "vlErA9vfNOaCUntERLJo+zRfwgyX4NIwk2PAKWUSZoT0iv34ft1sLbpfAXmOS/E0\n",
    "x8owXZzPPlTzbBbbKQsZ7FDmy87jnA6PGx9nBLLW0MQKytbOFoN5\n",
    "-----END RSA PRIVATE KEY-----\n"
);
