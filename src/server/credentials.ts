/**
 * The key pair the server accepts, kept in `<home>/credentials` as an AWS shared-credentials file
 * with a profile `strand`, so the AWS CLI and SDKs use it as they use any profile
 * (`AWS_SHARED_CREDENTIALS_FILE=<home>/credentials AWS_PROFILE=strand`). Made on the server's
 * first start, readable by its owner only; other profiles in the file are left as they are.
 */
import { randomBytes } from 'node:crypto';
import {
  appendFileSync,
  chmodSync,
  existsSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { privateHome } from '../home/permissions.js';

export const PROFILE = 'strand';

export interface ServerCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  /** The file they are kept in. */
  path: string;
  /** Whether this call made them. */
  created: boolean;
}

/** A credentials file that cannot be used (a profile without its keys, say). */
export class CredentialsError extends Error {
  readonly code = 'STRAND_CREDENTIALS';
  constructor(message: string) {
    super(message);
    this.name = 'CredentialsError';
  }
}

/** The profiles of an INI file, each as its keys; comments and blank lines ignored. */
export function parseProfiles(text: string): Map<string, Map<string, string>> {
  const profiles = new Map<string, Map<string, string>>();
  let current: Map<string, string> | undefined;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const section = /^\[\s*(?:profile\s+)?([^\]]+?)\s*\]$/.exec(line);
    if (section) {
      current = profiles.get(section[1]) ?? new Map<string, string>();
      profiles.set(section[1], current);
      continue;
    }
    const eq = line.indexOf('=');
    if (current && eq > 0) current.set(line.slice(0, eq).trim(), line.slice(eq + 1).trim());
  }
  return profiles;
}

/** A new key pair in AWS's formats: a 20-character key id, a 40-character secret. */
function newKeyPair(): { accessKeyId: string; secretAccessKey: string } {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  const id = [...randomBytes(16)].map((b) => alphabet[b % 32]).join('');
  return { accessKeyId: `AKST${id}`, secretAccessKey: randomBytes(30).toString('base64') };
}

function profileText(keys: { accessKeyId: string; secretAccessKey: string }): string {
  return `[${PROFILE}]\naws_access_key_id = ${keys.accessKeyId}\naws_secret_access_key = ${keys.secretAccessKey}\n`;
}

/**
 * The server's key pair: the `strand` profile of `<home>/credentials`, made (file mode 0600)
 * when the file or the profile is not there yet. A file others could read is narrowed to 0600.
 */
export function loadOrCreateCredentials(home: string): ServerCredentials {
  privateHome(home);
  const path = join(home, 'credentials');
  if (!existsSync(path)) {
    const keys = newKeyPair();
    // `wx`: if another process made the file meanwhile, its keys win (read below).
    try {
      writeFileSync(path, profileText(keys), { mode: 0o600, flag: 'wx' });
      return { ...keys, path, created: true };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  if ((statSync(path).mode & 0o077) !== 0) chmodSync(path, 0o600);
  const profile = parseProfiles(readFileSync(path, 'utf8')).get(PROFILE);
  if (!profile) {
    const keys = newKeyPair();
    const text = readFileSync(path, 'utf8');
    appendFileSync(path, `${text === '' || text.endsWith('\n') ? '' : '\n'}${profileText(keys)}`);
    return { ...keys, path, created: true };
  }
  const accessKeyId = profile.get('aws_access_key_id');
  const secretAccessKey = profile.get('aws_secret_access_key');
  if (!accessKeyId || !secretAccessKey)
    throw new CredentialsError(
      `${path}: profile [${PROFILE}] needs aws_access_key_id and aws_secret_access_key (remove the profile and the server makes a new key pair)`,
    );
  return { accessKeyId, secretAccessKey, path, created: false };
}
