import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/**
 * Outside production, a missing key is generated once into DATA_DIR (mode 0600) and reused,
 * so tokens and encrypted values survive restarts without anyone inventing a secret.
 */
export function loadOrCreateSecret(
  dataDir: string,
  name: string,
  bytes = 32,
): { key: Buffer; created: boolean } {
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const file = path.join(dataDir, name);
  try {
    fs.writeFileSync(file, randomBytes(bytes).toString('hex') + '\n', { mode: 0o600, flag: 'wx' });
    return { key: readKey(file, bytes), created: true };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return { key: readKey(file, bytes), created: false };
  }
}

function readKey(file: string, bytes: number): Buffer {
  const key = Buffer.from(fs.readFileSync(file, 'utf8').trim(), 'hex');
  if (key.length !== bytes)
    throw new Error(`${file} does not hold a ${bytes}-byte hex key; delete it to regenerate`);
  return key;
}
