/**
 * The settings a running server works with: the stored ones, with the command line's and the
 * environment's overrides on top, and the allowed peers. `refresh` reads the stored version
 * (one indexed row) and reloads only when it moved, so it can run for every association: a
 * change made by `dicom-server config set`, `ae add` or the API, in this process or another one
 * on the same database, applies from the next association on.
 *
 * Layer: server.
 */

import type { SettingsRepository } from '../db/repositories/settings-repository.js';
import type { AllowedAe, Settings } from '../settings/schema.js';
import { type AccessPolicy, AddressList } from './access-control.js';

/** Settings and peers, as loaded. */
export class LiveConfig {
  readonly #repository: SettingsRepository;
  readonly #overrides: Partial<Settings>;
  readonly #listeners: ((settings: Settings, previous: Settings) => void)[] = [];
  #settings: Settings;
  #stored: Settings;
  #version: number;
  #policy: AccessPolicy;
  #refreshing: Promise<void> | undefined;

  private constructor(
    repository: SettingsRepository,
    overrides: Partial<Settings>,
    stored: Settings,
    version: number,
    peers: AllowedAe[],
  ) {
    this.#repository = repository;
    this.#overrides = overrides;
    this.#stored = stored;
    this.#settings = { ...stored, ...overrides };
    this.#version = version;
    this.#policy = policyOf(this.#settings, peers);
  }

  /** Loads the stored settings and peers; `overrides` win over the stored values. */
  static async load(
    repository: SettingsRepository,
    overrides: Partial<Settings> = {},
  ): Promise<LiveConfig> {
    const { settings, version } = await repository.get();
    const peers = await repository.listAllowedAes();
    return new LiveConfig(repository, overrides, settings, version, peers);
  }

  /** The settings in effect. */
  get settings(): Settings {
    return this.#settings;
  }

  /** The stored settings, without the overrides. */
  get stored(): Settings {
    return this.#stored;
  }

  /** The settings given on the command line or in the environment, which win over stored ones. */
  get overrides(): Partial<Settings> {
    return this.#overrides;
  }

  /** Access control's view of the settings and peers. */
  get policy(): AccessPolicy {
    return this.#policy;
  }

  /** Called with the new and previous settings whenever a refresh loaded a change. */
  onChange(listener: (settings: Settings, previous: Settings) => void): void {
    this.#listeners.push(listener);
  }

  /** Reloads when the stored version moved; concurrent callers share one reload. */
  refresh(): Promise<void> {
    this.#refreshing ??= this.#reload().finally(() => {
      this.#refreshing = undefined;
    });
    return this.#refreshing;
  }

  async #reload(): Promise<void> {
    if ((await this.#repository.version()) === this.#version) return;
    const { settings, version } = await this.#repository.get();
    const peers = await this.#repository.listAllowedAes();
    const previous = this.#settings;
    this.#stored = settings;
    this.#settings = { ...settings, ...this.#overrides };
    this.#version = version;
    this.#policy = policyOf(this.#settings, peers);
    for (const listener of this.#listeners) listener(this.#settings, previous);
  }
}

function policyOf(settings: Settings, peers: readonly AllowedAe[]): AccessPolicy {
  return {
    requireCallingAeValidation: settings.require_calling_ae_validation,
    isObserveOnly: settings.ae_validation_observe_only,
    allowedAddresses: new AddressList(settings.allowed_ip_addresses),
    allowedAes: new Map(peers.map((peer) => [peer.ae_title, peer])),
  };
}
