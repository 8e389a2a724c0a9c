/**
 * What a user name and a password must be, for the API and the `dicom-server user` command.
 *
 * Layer: web.
 */

import { z } from 'zod';

export const UsernameSchema = z
  .string()
  .trim()
  .min(1, { error: 'must not be empty' })
  .max(64, { error: 'must be at most 64 characters' })
  .regex(/^[A-Za-z0-9._@-]+$/, { error: 'may hold letters, digits and . _ @ - only' });

export const PasswordSchema = z
  .string()
  .min(10, { error: 'must be at least 10 characters' })
  .max(1000, { error: 'must be at most 1000 characters' });
