// Every hub failure is a HubError whose message says what went wrong and what to do about it
// (set HF_TOKEN, unset HF_HUB_OFFLINE, run again to resume...). `kind` lets callers branch.

export type HubErrorKind =
  | "auth"        // 401/403: gated or private repository, or a bad token
  | "not-found"   // repository, revision or file does not exist
  | "offline"     // HF_HUB_OFFLINE=1 (or no network) and the cache lacks something
  | "integrity"   // downloaded bytes do not match the size / sha256 the hub announced
  | "network"     // connection failed after retries
  | "http"        // any other unexpected HTTP status
  | "io"          // the cache folder cannot be written
  | "spec"        // the model spec itself is malformed
  | "unsupported"; // the repository has no weights phi2 can read

export class HubError extends Error {
  /**
   * A network failure that another try cannot mend (an untrusted certificate): thrown at once, not
   * retried. It keeps kind "network", so a complete cached snapshot still serves.
   */
  readonly permanent: boolean;

  constructor(message: string, readonly kind: HubErrorKind, readonly status?: number, options: { permanent?: boolean } = {}) {
    super(message);
    this.name = "HubError";
    this.permanent = options.permanent ?? false;
  }
}
