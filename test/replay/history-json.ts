/**
 * History <-> the JSON of Temporal's own tools (`temporal workflow show -o json`, the Web UI's download), as the SDK's
 * `historyToJSON`/`historyFromJSON` (@temporalio/common/lib/proto-utils) write and read it.
 *
 * Why not those two: @temporalio/common and @temporalio/proto each get a nested copy of protobufjs 8 here (the root
 * copy is 7, for @grpc/proto-loader), and protojson's `toJson`/`fromJson` check `type instanceof Type` against their own
 * copy, so the SDK's helpers throw "type must be a Type". This file takes protojson from the copy that
 * @temporalio/proto itself loads, so the type and the check agree however npm lays the packages out.
 */
import path from 'node:path';
import type { temporal } from '@temporalio/proto';
import * as proto from '@temporalio/proto';
import { patchProtobufRoot } from '@temporalio/proto/lib/patch-protobuf-root';

export type History = temporal.api.history.v1.IHistory;

/** What this file uses of protobufjs 8's ext/protojson (the root protobufjs, 7, has no types for it). */
interface ProtoJson {
  toJson(type: unknown, message: unknown): unknown;
  fromJson(type: unknown, json: unknown, options: { ignoreUnknownFields: boolean }): unknown;
}

// eslint-disable-next-line @typescript-eslint/no-require-imports -- resolved at run time, from @temporalio/proto's copy
const protojson = require(
  require.resolve('protobufjs/ext/protojson', { paths: [path.dirname(require.resolve('@temporalio/proto'))] }),
) as ProtoJson;
// The generated module's types lack lookupType (the SDK casts the same way).
const historyType = (patchProtobufRoot(proto) as unknown as { lookupType(name: string): unknown }).lookupType(
  'temporal.api.history.v1.History',
);

export function historyToJSON(history: History): string {
  const message = proto.temporal.api.history.v1.History.fromObject(history);
  return JSON.stringify(protojson.toJson(historyType, message), null, 2);
}

export function historyFromJSON(json: unknown): History {
  // Tolerate fields a newer server or SDK adds, as the SDK's own reader does.
  const history = protojson.fromJson(historyType, json, { ignoreUnknownFields: true }) as History | null;
  if (!history) throw new TypeError('not a history');
  return history;
}
