/**
 * Exit codes of the `pubflow` command (documented in README.md, "CLI"):
 *   0  done; for `watch`, the task or batch succeeded
 *   1  the task or batch watched ended failed or cancelled
 *   2  usage or input error: a bad flag or file, or the API refused the request as given (400, 404, 409, 413, 422)
 *   3  the API could not be used: unreachable, 401/403 (token), 429, 5xx, an unexpected answer
 */
export const EXIT = { ok: 0, outcome: 1, input: 2, api: 3 } as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** An error the CLI reports as one message on stderr and an exit code, without a stack. */
export class CliError extends Error {
  override readonly name = 'CliError';
  constructor(
    message: string,
    readonly exitCode: ExitCode,
    /** More lines for stderr (one per bad field, a hint). */
    readonly lines: string[] = [],
  ) {
    super(message);
  }
}

export const inputError = (message: string, lines: string[] = []) => new CliError(message, EXIT.input, lines);

/** One field of the API's 400 details: `{field: "items[3].title", message}`. */
export interface FieldIssue {
  field: string;
  message: string;
}

/** The API answered with an error envelope `{error: {code, message, details}}` (or something that is not one). */
export class ApiResponseError extends CliError {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: unknown,
    exitCode: ExitCode,
    lines: string[] = [],
  ) {
    super(message, exitCode, lines);
  }

  /** The 400's field issues, when there are any. */
  get issues(): FieldIssue[] {
    if (!Array.isArray(this.details)) return [];
    return this.details.filter(
      (d): d is FieldIssue =>
        typeof d === 'object' && d !== null && typeof d.field === 'string' && typeof d.message === 'string',
    );
  }
}
