/**
 * Serves the web console (the single-page app built from web/ into dist/web) under
 * `/dicom-server/`: index.html for the console's pages (the app reads the path), the hashed
 * assets with a year-long immutable cache, a 503 page that says what to do when the console was
 * not built, and `/` sent on to the console. These routes are public: the login page is part of
 * the app, and every API call it makes needs the session.
 *
 * Layer: web.
 */

import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply } from 'fastify';

/** Where the console lives. */
export const CONSOLE_PREFIX = '/dicom-server';

/** The console's pages, each answered with index.html. */
export const CONSOLE_PAGES = [
  '',
  'config/',
  'ae-titles/',
  'transactions/',
  'associations/',
  'processing/',
  'routing/',
];

/** Vite's hashed output: the name changes with the content, so it may be cached for good. */
const ASSETS_CACHE_SECONDS = 365 * 24 * 60 * 60;

/**
 * What the browser may do with the console's page: scripts, styles and connections from this
 * server only (uPlot and React set inline style properties; the favicon is a data URL).
 */
const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/** Options of the console plugin. */
export interface ConsoleOptions {
  /** The built console (default: dist/web of this package). */
  readonly root?: string;
}

/** The package's dist/web: found from this file, whether run from dist/src/web or src/web. */
function defaultRoot(): string {
  let directory = import.meta.dirname;
  while (!existsSync(join(directory, 'package.json'))) {
    const parent = dirname(directory);
    if (parent === directory) return resolve(import.meta.dirname, '..', '..', 'web');
    directory = parent;
  }
  return join(directory, 'dist', 'web');
}

const NOT_BUILT_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>dicom-server: console not built</title>
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:40em;margin:4em auto;padding:0 1em;color:#1c2430}
code{background:#eef1f5;padding:.1em .3em;border-radius:3px}</style></head>
<body><h1>The web console is not built</h1>
<p>This server runs, and its REST API answers under <code>/dicom-server/api/</code>, but the
console's files are missing from <code>dist/web</code>.</p>
<p>Build it with <code>npm run build</code> (or <code>npm start</code>, which builds first), then
reload this page.</p></body></html>
`;

function securityHeaders(reply: FastifyReply): FastifyReply {
  return reply
    .header('Content-Security-Policy', CONTENT_SECURITY_POLICY)
    .header('X-Content-Type-Options', 'nosniff')
    .header('X-Frame-Options', 'DENY')
    .header('Referrer-Policy', 'same-origin');
}

/** Registers the console's routes (Fastify plugin). */
export async function consolePlugin(app: FastifyInstance, options: ConsoleOptions = {}) {
  const root = options.root ?? defaultRoot();
  const indexFile = join(root, 'index.html');
  // Files are sent with sendFile only, from the routes below (no wildcard over the prefix, so
  // an unknown API path stays the API's JSON 404).
  await app.register(fastifyStatic, { serve: false, dotfiles: 'ignore' });
  const route = { config: { isPublic: true }, schema: { hide: true } } as const;

  const sendIndex = (reply: FastifyReply) => {
    securityHeaders(reply);
    if (!existsSync(indexFile)) {
      return reply.code(503).type('text/html; charset=utf-8').send(NOT_BUILT_PAGE);
    }
    // The page names the current assets: it is read fresh each time (the onRequest hook's
    // no-store stays).
    return reply.sendFile('index.html', root, { cacheControl: false });
  };

  for (const page of CONSOLE_PAGES) {
    app.get(`${CONSOLE_PREFIX}/${page}`, route, (_request, reply) => sendIndex(reply));
    if (page !== '') {
      app.get(`${CONSOLE_PREFIX}/${page.slice(0, -1)}`, route, (_request, reply) =>
        reply.redirect(`${CONSOLE_PREFIX}/${page}`, 301),
      );
    }
  }
  app.get(CONSOLE_PREFIX, route, (_request, reply) => reply.redirect(`${CONSOLE_PREFIX}/`, 301));
  app.get('/', route, (_request, reply) => reply.redirect(`${CONSOLE_PREFIX}/`, 302));

  app.get<{ Params: { '*': string } }>(`${CONSOLE_PREFIX}/assets/*`, route, (request, reply) => {
    if (!existsSync(indexFile)) {
      return reply.code(503).type('text/plain; charset=utf-8').send('console not built');
    }
    // sendFile keeps the path inside root (send refuses `..`) and sets Cache-Control,
    // replacing the hook's no-store.
    return reply.sendFile(`assets/${request.params['*']}`, root, {
      maxAge: ASSETS_CACHE_SECONDS * 1000,
      immutable: true,
    });
  });
}
