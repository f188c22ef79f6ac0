// Kept so that `tsx --import ./bench/raw-loader.mjs ...` still works: the loader itself is shared with the
// `graft` command and lives in scripts/raw-loader.mjs.
import '../scripts/raw-loader.mjs';
