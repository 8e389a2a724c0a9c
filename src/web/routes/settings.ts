/**
 * Settings (read, the secrets masked; change with a message per invalid field, and which
 * changes wait for a restart) and the allowed AE titles (list, create, read, update, delete,
 * test with C-ECHO, the calling AE titles seen lately).
 *
 * Layer: web.
 */

import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { loadClientTls } from '../../server/tls-credentials.js';
import { echo } from '../../services/scu/echo.js';
import { RESTART_SETTINGS, type SettingKey, type Settings } from '../../settings/schema.js';
import { audit, fail, type WebContext } from '../context.js';

const AnyObject = z.record(z.string(), z.unknown());
const TitleParams = z.object({ title: z.string().min(1).max(16) });

/** Settings no answer shows: anyone may read the settings, a viewer too. */
export const SECRET_SETTINGS: readonly SettingKey[] = ['webhook_secret', 'metrics_token'];

/**
 * What a secret that is set reads as (an empty one reads as ''). Sent back in a change, it keeps
 * the stored secret: a form can send what it read. So this exact text cannot itself be a secret.
 */
export const SECRET_MASK = '********';

/** The settings with every secret that is set replaced by the mask. */
export function maskedSettings(settings: Settings): Settings {
  const masked: Record<string, unknown> = { ...settings };
  for (const key of SECRET_SETTINGS) {
    if (settings[key] !== '') masked[key] = SECRET_MASK;
  }
  return masked as Settings;
}

/** A change without the secrets sent back masked (those stay as stored). */
function withoutMaskedSecrets(change: Record<string, unknown>): Record<string, unknown> {
  const kept = { ...change };
  for (const key of SECRET_SETTINGS) {
    if (kept[key] === SECRET_MASK) delete kept[key];
  }
  return kept;
}

export function registerSettingsRoutes(api: FastifyInstance, context: WebContext): void {
  const app = api.withTypeProvider<ZodTypeProvider>();

  app.get(
    '/settings/',
    {
      schema: {
        summary: `Every setting, stored and in effect (a secret that is set as ${SECRET_MASK})`,
      },
    },
    async () => {
      const { settings, version } = await context.settings.get();
      return {
        settings: maskedSettings(settings),
        version,
        // Flags and environment variables of the running process win over the stored values.
        overridden: Object.keys(context.config.overrides),
        effective: maskedSettings(context.config.settings),
        restartSettings: [...RESTART_SETTINGS],
        webhook_secret_set: settings.webhook_secret !== '',
      };
    },
  );

  app.patch(
    '/settings/',
    {
      schema: {
        summary: `Change some settings (by name; a secret sent as ${SECRET_MASK} is kept)`,
        body: AnyObject,
      },
    },
    async (request, reply) => {
      const result = await context.settings.update(withoutMaskedSecrets(request.body));
      if (!result.isValid) {
        await audit(context, request, 'settings change', 'failure', JSON.stringify(result.errors));
        return fail(reply, 400, 'invalid settings', result.errors);
      }
      const changed = result.changed ?? [];
      await audit(context, request, 'settings change', 'success', changed.join(', '));
      await context.config.refresh();
      return {
        settings: maskedSettings(result.value),
        changed,
        restartRequired: changed.filter((key) => RESTART_SETTINGS.has(key)),
        webhook_secret_set: result.value.webhook_secret !== '',
      };
    },
  );

  app.get('/ae-titles/', { schema: { summary: 'The allowed AE titles' } }, async () =>
    context.settings.listAllowedAes(),
  );

  app.get(
    '/ae-titles/seen',
    {
      schema: {
        summary: 'Calling AE titles seen lately, and whether they are listed',
        querystring: z.object({
          hours: z.coerce
            .number()
            .positive()
            .max(24 * 365)
            .default(168),
        }),
      },
    },
    async (request) => {
      const since = new Date(Date.now() - request.query.hours * 3_600_000).toISOString();
      const listed = new Set((await context.settings.listAllowedAes()).map((ae) => ae.ae_title));
      return (await context.transactions.seenCallingAes(since)).map((seen) => ({
        ...seen,
        isListed: listed.has(seen.callingAe),
      }));
    },
  );

  app.post(
    '/ae-titles/',
    { schema: { summary: 'Add an allowed AE title', body: AnyObject } },
    async (request, reply) => {
      const result = await context.settings.addAllowedAe(request.body);
      const title = String(request.body.ae_title ?? '');
      if (!result.isValid) {
        await audit(
          context,
          request,
          'AE title add',
          'failure',
          `${title}: ${JSON.stringify(result.errors)}`,
        );
        return fail(
          reply,
          result.errors.ae_title === 'is already in the list' ? 409 : 400,
          'invalid AE title',
          result.errors,
        );
      }
      await audit(context, request, 'AE title add', 'success', result.value.ae_title);
      return reply.code(201).send(result.value);
    },
  );

  app.get(
    '/ae-titles/:title',
    { schema: { summary: 'One allowed AE title', params: TitleParams } },
    async (request, reply) => {
      const ae = await context.settings.findAllowedAe(request.params.title);
      return ae ?? fail(reply, 404, `AE title ${request.params.title} is not in the list`);
    },
  );

  app.patch(
    '/ae-titles/:title',
    { schema: { summary: 'Change an allowed AE title', params: TitleParams, body: AnyObject } },
    async (request, reply) => {
      const { title } = request.params;
      const result = await context.settings.updateAllowedAe(title, request.body);
      if (result === undefined) return fail(reply, 404, `AE title ${title} is not in the list`);
      if (!result.isValid) {
        await audit(
          context,
          request,
          'AE title change',
          'failure',
          `${title}: ${JSON.stringify(result.errors)}`,
        );
        return fail(reply, 400, 'invalid AE title', result.errors);
      }
      await audit(
        context,
        request,
        'AE title change',
        'success',
        `${title}: ${Object.keys(request.body).join(', ')}`,
      );
      return result.value;
    },
  );

  app.delete(
    '/ae-titles/:title',
    { schema: { summary: 'Remove an allowed AE title', params: TitleParams } },
    async (request, reply) => {
      const { title } = request.params;
      if (!(await context.settings.removeAllowedAe(title))) {
        return fail(reply, 404, `AE title ${title} is not in the list`);
      }
      await audit(context, request, 'AE title remove', 'success', title);
      return reply.code(204).send();
    },
  );

  app.post(
    '/ae-titles/:title/echo',
    {
      schema: {
        summary: "C-ECHO to the AE title's host and port (over TLS when it is marked use_tls)",
        params: TitleParams,
      },
    },
    async (request, reply) => {
      const { title } = request.params;
      const ae = await context.settings.findAllowedAe(title);
      if (ae === undefined) return fail(reply, 404, `AE title ${title} is not in the list`);
      if (ae.host === '' || ae.port === null) {
        return fail(reply, 400, `AE title ${title} has no host and port to echo`);
      }
      const started = performance.now();
      try {
        // The certificates are read for each test: one fixed since the service started counts.
        const tls = ae.use_tls ? await loadClientTls(context.config.settings) : undefined;
        const result = await echo({
          host: ae.host,
          port: ae.port,
          ...(tls !== undefined && { tls }),
          callingAeTitle: context.config.settings.ae_title,
          calledAeTitle: ae.ae_title,
          timeouts: { acseMs: 10_000, dimseMs: 10_000 },
        });
        return {
          isSuccess: result.status === 0,
          status: result.status,
          durationMs: Math.round(performance.now() - started),
        };
      } catch (error) {
        return {
          isSuccess: false,
          error: error instanceof Error ? error.message : String(error),
          durationMs: Math.round(performance.now() - started),
        };
      }
    },
  );
}
