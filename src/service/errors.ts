/**
 * What the service layer refuses, independent of HTTP: src/api/errors.ts maps each class to its status
 * (400, 404, 409, 413, 422). Anything else that escapes the service is unexpected (500).
 */

/** One offending field: `items[3].video.path`, `Idempotency-Key`. */
export interface FieldIssue {
  field: string;
  message: string;
}

export class ServiceError extends Error {}

/** Input that is well-formed but wrong here: an unknown account, a file outside the media root (HTTP 400). */
export class InvalidInputError extends ServiceError {
  override readonly name = 'InvalidInputError';
  constructor(
    readonly issues: FieldIssue[],
    message = issues[0] ? `${issues[0].field}: ${issues[0].message}` : 'invalid input',
  ) {
    super(message);
  }
}

export const invalid = (field: string, message: string) => new InvalidInputError([{ field, message }]);

export class NotFoundError extends ServiceError {
  override readonly name = 'NotFoundError';
  constructor(what: string) {
    super(`${what} not found`);
  }
}

/** A refusal with a machine-readable code and optional details. */
class CodedError extends ServiceError {
  constructor(
    readonly code: string,
    message: string,
    readonly details: unknown = null,
  ) {
    super(message);
  }
}

/** The target's state does not allow the request (HTTP 409); `code` says which state. */
export class ConflictError extends CodedError {
  override readonly name = 'ConflictError';
}

/** The request is larger than Temporal accepts as one workflow input (HTTP 413). */
export class TooLargeError extends CodedError {
  override readonly name = 'TooLargeError';
}

/** An Idempotency-Key reused with a different request (HTTP 422): the first request's task is not returned. */
export class IdempotencyMismatchError extends ServiceError {
  override readonly name = 'IdempotencyMismatchError';
  constructor(readonly taskId: string) {
    super(`this Idempotency-Key was first used for a different request (task ${taskId}); use a new key`);
  }
}
