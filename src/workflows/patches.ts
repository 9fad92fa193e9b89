/**
 * Patch ids, in one place. Every id costs each new run a marker and an upsert of the TemporalChangeVersion search
 * attribute (a visibility write on the server), so changes that ship together share one id.
 */

/** Runs started before the projection memo replay without it. */
export const PATCH_DOC_MEMO = 'pubflow-doc-memo';

/**
 * The queue gates and the cheaper bookkeeping that shipped with them: account/platform gates before each upload,
 * Redis writes and gate requests as local activities, and child -> batch reports only when the status (or review)
 * changes. Runs started before it replay with regular activities and a report per version.
 */
export const PATCH_QUEUE_GATES = 'pubflow-queue-gates';

/**
 * The batch writes its document at the first workflow task past its once-a-second deadline, not only when its timer
 * fires. Runs started before it replay waiting for the timer.
 */
export const PATCH_BATCH_DOC_LIVE = 'pubflow-batch-doc-live';
