/**
 * Custom search attributes pubflow registers on the namespace (make up, tests) and sets from the API and the
 * workflows. They let the reconciler and operators find tasks in Temporal's visibility by status, type,
 * platform, account and batch.
 */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const SEARCH_ATTRIBUTES = {
  PubflowStatus: 'Keyword',
  PubflowType: 'Keyword',
  PubflowPlatform: 'Keyword',
  PubflowAccount: 'Keyword',
  PubflowParent: 'Keyword',
} as const;

export const SEARCH_ATTRIBUTE_KEYS = {
  status: defineSearchAttributeKey('PubflowStatus', SearchAttributeType.KEYWORD),
  type: defineSearchAttributeKey('PubflowType', SearchAttributeType.KEYWORD),
  platform: defineSearchAttributeKey('PubflowPlatform', SearchAttributeType.KEYWORD),
  account: defineSearchAttributeKey('PubflowAccount', SearchAttributeType.KEYWORD),
  parent: defineSearchAttributeKey('PubflowParent', SearchAttributeType.KEYWORD),
};
