/**
 * `dicom-server user add|list|remove|password`: the console's users, managed without the
 * console (the first administrator of a headless installation, a forgotten password). A
 * password is read from standard input with `--password-stdin`, or generated and shown once.
 *
 * Layer: cli.
 */

import { randomBytes } from 'node:crypto';
import type { Command } from 'commander';
import { Option } from 'commander';
import { ROLES, type Role, UserRepository } from '../db/repositories/user-repository.js';
import { hashPassword } from '../web/auth.js';
import { PasswordSchema, UsernameSchema } from '../web/user-rules.js';
import {
  AdminExitCode,
  addDatabaseOptions,
  type DatabaseCliOptions,
  exitInvalidInputOnUsageErrors,
  withDatabase,
} from './database-options.js';

interface PasswordOptions extends DatabaseCliOptions {
  readonly passwordStdin?: boolean;
}

/** The first line of standard input. */
async function readStdinLine(): Promise<string> {
  let text = '';
  for await (const chunk of process.stdin) {
    text += String(chunk);
    if (text.includes('\n')) break;
  }
  return text.split(/\r?\n/)[0] ?? '';
}

/** The password to set: from stdin, or generated (then printed). Undefined when invalid. */
async function passwordFor(
  options: PasswordOptions,
): Promise<{ password: string; isGenerated: boolean } | undefined> {
  if (options.passwordStdin !== true) {
    return { password: randomBytes(12).toString('base64url'), isGenerated: true };
  }
  const password = await readStdinLine();
  const result = PasswordSchema.safeParse(password);
  if (!result.success) {
    process.stderr.write(`password: ${result.error.issues[0]?.message ?? 'invalid'}\n`);
    return undefined;
  }
  return { password, isGenerated: false };
}

function checkedUsername(name: string): string | undefined {
  const result = UsernameSchema.safeParse(name);
  if (result.success) return result.data;
  process.stderr.write(`username: ${result.error.issues[0]?.message ?? 'invalid'}\n`);
  return undefined;
}

/** Adds the `user` command group. */
export function registerUser(program: Command): void {
  const user = exitInvalidInputOnUsageErrors(
    program.command('user').description('manage the users of the web console'),
  );

  addDatabaseOptions(
    user
      .command('add')
      .description('add a user (password from --password-stdin, or generated and shown once)')
      .argument('<name>', 'user name')
      .addOption(
        new Option('--role <role>', 'admin: everything; viewer: read only')
          .choices(ROLES)
          .default('admin'),
      )
      .option('--password-stdin', 'read the password from the first line of standard input'),
  ).action(async (name: string, options: PasswordOptions & { role: Role }) => {
    const username = checkedUsername(name);
    const secret = username === undefined ? undefined : await passwordFor(options);
    if (username === undefined || secret === undefined) {
      process.exitCode = AdminExitCode.InvalidInput;
      return;
    }
    await withDatabase(options, async (database) => {
      const added = await new UserRepository(database).add(
        username,
        await hashPassword(secret.password),
        options.role,
      );
      if (added === undefined) {
        process.stderr.write(`username: ${username} is taken\n`);
        return AdminExitCode.InvalidInput;
      }
      process.stdout.write(`added ${options.role} ${username}\n`);
      if (secret.isGenerated) process.stdout.write(`password: ${secret.password}\n`);
      return AdminExitCode.Success;
    });
  });

  addDatabaseOptions(
    user
      .command('password')
      .description("set a user's password (ends its sessions)")
      .argument('<name>', 'user name')
      .option('--password-stdin', 'read the password from the first line of standard input'),
  ).action(async (name: string, options: PasswordOptions) => {
    const secret = await passwordFor(options);
    if (secret === undefined) {
      process.exitCode = AdminExitCode.InvalidInput;
      return;
    }
    await withDatabase(options, async (database) => {
      if (
        !(await new UserRepository(database).setPassword(name, await hashPassword(secret.password)))
      ) {
        process.stderr.write(`no user ${name}\n`);
        return AdminExitCode.Failed;
      }
      process.stdout.write(`password of ${name} changed\n`);
      if (secret.isGenerated) process.stdout.write(`password: ${secret.password}\n`);
      return AdminExitCode.Success;
    });
  });

  addDatabaseOptions(user.command('list').description('list the users')).action(
    async (options: DatabaseCliOptions) => {
      await withDatabase(options, async (database) => {
        for (const entry of await new UserRepository(database).list()) {
          process.stdout.write(
            `${entry.username}\t${entry.role}\tlast login ${entry.lastLoginAt ?? 'never'}\n`,
          );
        }
        return AdminExitCode.Success;
      });
    },
  );

  addDatabaseOptions(
    user.command('remove').description('remove a user').argument('<name>', 'user name'),
  ).action(async (name: string, options: DatabaseCliOptions) => {
    await withDatabase(options, async (database) => {
      if (!(await new UserRepository(database).remove(name))) {
        process.stderr.write(`no user ${name}\n`);
        return AdminExitCode.Failed;
      }
      process.stdout.write(`removed ${name}\n`);
      return AdminExitCode.Success;
    });
  });
}
