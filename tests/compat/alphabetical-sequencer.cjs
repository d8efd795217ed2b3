// Jest test sequencer for run-convex-suite.sh: runs the suite's files in
// alphabetical order, so that results do not depend on the timings Jest cached
// from earlier runs (all files share one backend, so order can matter).
// Jest's own sequencer is loaded from the suite's node_modules (the cwd).
const { createRequire } = require("module");
const path = require("path");

const suiteRequire = createRequire(path.join(process.cwd(), "package.json"));
const BaseSequencer = suiteRequire("@jest/test-sequencer").default;

class AlphabeticalSequencer extends BaseSequencer {
  sort(tests) {
    return [...tests].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }
}

module.exports = AlphabeticalSequencer;
