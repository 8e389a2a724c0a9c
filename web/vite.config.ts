/**
 * Builds the console (web/) into dist/web, served by the server under /dicom-server/
 * (src/web/console.ts). Run from the package root as `vite build web` (npm run build) or
 * `vite web` (npm run dev:web: a dev server that passes the API on to a running server).
 */

import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

export default defineConfig({
  base: '/dicom-server/',
  plugins: [react()],
  build: {
    outDir: '../dist/web',
    emptyOutDir: true,
    // Modern browsers only: an administrator's workstation, not a kiosk.
    target: 'es2022',
  },
  server: {
    proxy: {
      // The API of a server started with `dicom-server serve` (its default HTTP port).
      '/dicom-server/api': { target: 'http://127.0.0.1:8000', changeOrigin: false },
    },
  },
});
