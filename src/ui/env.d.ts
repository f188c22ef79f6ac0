/// <reference types="svelte" />
/// <reference types="vite-plugin-pwa/client" />

/** package.json's version, set at build time (vite.config.ts). */
declare const __GRAFT_VERSION__: string;
/** GRAFT_BUILD_ID at build time, or ''. */
declare const __GRAFT_BUILD_ID__: string;
