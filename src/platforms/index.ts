import { LocalDriver } from './local';
import type { PlatformDriver } from './types';
import { WebhookDriver } from './webhook';

export * from './types';
export { AccountError, AccountRegistry, DEMO_ACCOUNT, loadAccounts, type PublicAccount } from './accounts';
export { LocalDriver, type LocalDriverOptions } from './local';
export { checkMediaPath, isInside, MediaPathError, MediaRejected, openMedia, type OpenedMedia } from './media-root';
export { DEFAULT_WEBHOOK_TIMEOUT_MS, WebhookDriver, type WebhookDriverOptions } from './webhook';

// The brief places DriverRegistry here; the house rule says barrels only re-export, so it could move to its own file.
/** The drivers the worker knows, by platform name. */
export class DriverRegistry {
  private readonly byPlatform = new Map<string, PlatformDriver>();

  constructor(drivers: readonly PlatformDriver[]) {
    for (const d of drivers) {
      if (this.byPlatform.has(d.platform)) throw new Error(`two drivers for platform "${d.platform}"`);
      this.byPlatform.set(d.platform, d);
    }
  }

  get(platform: string): PlatformDriver | undefined {
    return this.byPlatform.get(platform);
  }

  platforms(): string[] {
    return [...this.byPlatform.keys()];
  }
}

export interface DefaultDriversOptions {
  /** Where the local driver writes (PUBFLOW_PUBLISHED_DIR). */
  publishedRoot: string;
  /** PUBFLOW_MEDIA_ROOT: the drivers open media files only inside it. */
  mediaRoot: string;
  /** The webhook driver's timeout when an account sets no `settings.timeoutMs`. */
  webhookTimeoutMs?: number;
}

export function createDefaultDrivers(options: DefaultDriversOptions): DriverRegistry {
  return new DriverRegistry([
    new LocalDriver({ publishedRoot: options.publishedRoot, mediaRoot: options.mediaRoot }),
    new WebhookDriver({ defaultTimeoutMs: options.webhookTimeoutMs, mediaRoot: options.mediaRoot }),
  ]);
}
