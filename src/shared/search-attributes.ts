/**
 * Custom search attributes pubflow registers on the namespace (make up, tests) and upserts from workflows.
 * They let the reconciler and operators find tasks in Temporal's visibility by status, platform, account and batch.
 */
export const SEARCH_ATTRIBUTES = {
  PubflowStatus: 'Keyword',
  PubflowType: 'Keyword',
  PubflowPlatform: 'Keyword',
  PubflowAccount: 'Keyword',
  PubflowParent: 'Keyword',
} as const;
