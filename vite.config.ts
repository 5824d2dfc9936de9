/**
 * The dashboard's front end (ui/): built by `npm run build` into dist/ui/, which `strand server`
 * serves at /ui/. Everything it loads is in that folder: no CDN, no fonts from elsewhere.
 */
import { fileURLToPath } from 'node:url';
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

export default defineConfig({
  root: fileURLToPath(new URL('./ui/', import.meta.url)),
  base: '/ui/',
  plugins: [react()],
  build: {
    outDir: fileURLToPath(new URL('./dist/ui/', import.meta.url)),
    emptyOutDir: true,
    // ELK's layout engine is one large module; the app is served from this machine, not a CDN.
    chunkSizeWarningLimit: 2500,
  },
});
