// The Graft web app: Svelte UI, one module worker that owns the GPU, and a service worker (vite-plugin-pwa)
// that precaches the app shell so Graft opens offline after the first visit.
//
// `base` is relative ('./') so the same build works at the root of a host or from any sub-path
// (e.g. https://example.org/tools/graft/). Set GRAFT_BASE=/graft/ to build with an absolute base instead.
// GRAFT_BUILD_ID (a commit id, say) is shown beside the version in the page footer.
// GRAFT_CONNECT_SRC (origins separated by spaces, e.g. "https://hf-mirror.com") adds hub origins to the
// Content-Security-Policy's connect-src in index.html, for a build that uses a mirror (docs/worker.md).
import { svelte } from '@sveltejs/vite-plugin-svelte';
import { VitePWA } from 'vite-plugin-pwa';
import { defineConfig } from 'vite';
import { readFileSync } from 'node:fs';

const base = process.env.GRAFT_BASE ?? './';
const pkg = JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8')) as { version: string };

export default defineConfig({
  base,
  define: {
    __GRAFT_VERSION__: JSON.stringify(pkg.version),
    __GRAFT_BUILD_ID__: JSON.stringify(process.env.GRAFT_BUILD_ID ?? ''),
  },
  plugins: [
    {
      // The Content-Security-Policy of index.html holds in the build; the dev server drops it (its module
      // reloads come over a WebSocket and inline scripts the policy refuses).
      name: 'graft-csp',
      transformIndexHtml(html: string, ctx: { server?: unknown }) {
        if (ctx.server) return html.replace(/\s*<meta\s+http-equiv="Content-Security-Policy"[^>]*\/>/, '');
        const extra = (process.env.GRAFT_CONNECT_SRC ?? '').split(/\s+/).filter((o) => /^https:\/\/[^\s;'"]+$/.test(o));
        return extra.length ? html.replace(/(connect-src 'self')/, `$1 ${extra.join(' ')}`) : html;
      },
    },
    svelte({ configFile: false }),
    VitePWA({
      registerType: 'prompt',
      // The app registers the service worker itself (src/ui/pwa.ts) so that it can show the update prompt.
      injectRegister: false,
      // globPatterns below already precaches the icons; don't list them twice.
      includeManifestIcons: false,
      manifest: {
        name: 'Graft',
        short_name: 'Graft',
        description: 'Fine-tune language models in your browser, on your own GPU, through WebGPU.',
        lang: 'en',
        display: 'standalone',
        background_color: '#f7f8f6',
        theme_color: '#2f6b3a',
        icons: [
          { src: 'icon.svg', sizes: 'any', type: 'image/svg+xml' },
          { src: 'icon-192.png', sizes: '192x192', type: 'image/png' },
          { src: 'icon-512.png', sizes: '512x512', type: 'image/png' },
          { src: 'icon-maskable-512.png', sizes: '512x512', type: 'image/png', purpose: 'maskable' },
        ],
      },
      workbox: {
        // The app shell: HTML, JS (the engine worker included), CSS and icons; the plugin adds the manifest.
        // And the built-in demo (public/demo/: a 0.5 MB model and its Q&A), which must work with no network.
        globPatterns: ['**/*.{html,js,css,svg,png}', 'demo/**/*.{json,safetensors}'],
        cleanupOutdatedCaches: true,
      },
    }),
  ],
  worker: {
    format: 'es',
  },
  build: {
    target: 'es2022',
  },
});
