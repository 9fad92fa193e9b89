import { readToolEnv } from '../helpers/tools';

/** Make the provisioned tool paths visible to every test worker (scripts/provision.sh writes .tools/env). */
export default function globalSetup(): void {
  const env = readToolEnv();
  for (const [k, v] of Object.entries(env)) if (process.env[k] === undefined) process.env[k] = v;
}
