// Graft's version, as package.json gives it (test/job/version.test.ts keeps the two equal). Written into the
// files only Graft reads (a bottleneck adapter's graft_version), so that a later version can tell old files apart.
export const GRAFT_VERSION = '0.1.0';
