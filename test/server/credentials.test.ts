import { chmodSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  CredentialsError,
  loadOrCreateCredentials,
  parseProfiles,
} from '../../src/server/credentials.js';
import { tempHome } from './helpers.js';

describe('server credentials', () => {
  it('are made on first start as profile [strand] of <home>/credentials, mode 0600, and kept', () => {
    const home = tempHome();
    const made = loadOrCreateCredentials(home);
    expect(made.created).toBe(true);
    expect(made.path).toBe(join(home, 'credentials'));
    expect(statSync(made.path).mode & 0o777).toBe(0o600);
    expect(made.accessKeyId).toMatch(/^[A-Z0-9]{20}$/);
    expect(made.secretAccessKey).toHaveLength(40);
    const profile = parseProfiles(readFileSync(made.path, 'utf8')).get('strand');
    expect(profile?.get('aws_access_key_id')).toBe(made.accessKeyId);
    expect(profile?.get('aws_secret_access_key')).toBe(made.secretAccessKey);
    const again = loadOrCreateCredentials(home);
    expect(again).toEqual({ ...made, created: false });
  });

  it('leave other profiles as they are and narrow a file others could read', () => {
    const home = tempHome();
    const path = join(home, 'credentials');
    writeFileSync(path, '[default]\naws_access_key_id = X\naws_secret_access_key = Y');
    chmodSync(path, 0o644);
    const made = loadOrCreateCredentials(home);
    const profiles = parseProfiles(readFileSync(path, 'utf8'));
    expect(profiles.get('default')?.get('aws_access_key_id')).toBe('X');
    expect(profiles.get('strand')?.get('aws_access_key_id')).toBe(made.accessKeyId);
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });

  it('refuse a [strand] profile without its keys, naming the file', () => {
    const home = tempHome();
    writeFileSync(join(home, 'credentials'), '[strand]\naws_access_key_id = X\n', { mode: 0o600 });
    expect(() => loadOrCreateCredentials(home)).toThrow(CredentialsError);
    expect(() => loadOrCreateCredentials(home)).toThrow(/credentials: profile \[strand\] needs/);
  });
});
