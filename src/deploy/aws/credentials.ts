/**
 * Whether this machine has AWS credentials and a region for `strand deploy aws`, looked up where
 * the AWS CLI and SDKs look (environment variables, the shared config and credentials files),
 * without calling AWS: the deploy should stop before it builds anything, naming what is missing.
 * The instance metadata service is not asked (that would be a network call); on EC2 name it in
 * a profile with `credential_source = Ec2InstanceMetadata`.
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

type Env = Record<string, string | undefined>;

/** Where credentials were found, or everything that was looked at. */
export type CredentialsInfo =
  | { found: true; source: string; region?: string; regionSource?: string }
  | { found: false; looked: string[]; region?: string; regionSource?: string };

/** The sections of an INI file as the AWS config files write them; none for a missing file. */
export function parseIni(text: string): Map<string, Map<string, string>> {
  const sections = new Map<string, Map<string, string>>();
  let current: Map<string, string> | undefined;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.replace(/^\s+|\s+$/g, '');
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[([^\]]+)\]$/.exec(line);
    if (header) {
      const name = header[1].trim();
      current = sections.get(name) ?? new Map<string, string>();
      sections.set(name, current);
      continue;
    }
    const eq = line.indexOf('=');
    if (eq > 0 && current) current.set(line.slice(0, eq).trim(), line.slice(eq + 1).trim());
  }
  return sections;
}

function readIni(path: string): Map<string, Map<string, string>> | undefined {
  try {
    return parseIni(readFileSync(path, 'utf8'));
  } catch {
    return undefined;
  }
}

const set = (v: string | undefined): v is string => v !== undefined && v !== '';

/** The keys that make a profile a source of credentials (keys, a role, SSO, a process, a login). */
const PROFILE_SOURCES = [
  'aws_access_key_id',
  'role_arn',
  'sso_session',
  'sso_start_url',
  'credential_process',
  'web_identity_token_file',
  'login_session',
];

/** Looks for credentials and a region in `env` and the files it points to (see the module comment). */
export function findCredentials(env: Env, regionFlag?: string): CredentialsInfo {
  const home = set(env.HOME) ? env.HOME : homedir();
  const credentialsFile = set(env.AWS_SHARED_CREDENTIALS_FILE)
    ? env.AWS_SHARED_CREDENTIALS_FILE
    : join(home, '.aws', 'credentials');
  const configFile = set(env.AWS_CONFIG_FILE) ? env.AWS_CONFIG_FILE : join(home, '.aws', 'config');
  const profile = set(env.AWS_PROFILE) ? env.AWS_PROFILE : 'default';
  const credentials = readIni(credentialsFile);
  const config = readIni(configFile);
  const inCredentials = credentials?.get(profile);
  const inConfig = config?.get(profile === 'default' ? 'default' : `profile ${profile}`);

  let region: string | undefined;
  let regionSource: string | undefined;
  if (set(regionFlag)) [region, regionSource] = [regionFlag, '--region'];
  else if (set(env.AWS_REGION)) [region, regionSource] = [env.AWS_REGION, 'AWS_REGION'];
  else if (set(env.AWS_DEFAULT_REGION))
    [region, regionSource] = [env.AWS_DEFAULT_REGION, 'AWS_DEFAULT_REGION'];
  else if (set(inConfig?.get('region')))
    [region, regionSource] = [inConfig.get('region'), `profile ${profile} in ${configFile}`];
  const where = { ...(region ? { region, regionSource } : {}) };

  if (set(env.AWS_ACCESS_KEY_ID) && set(env.AWS_SECRET_ACCESS_KEY))
    return { found: true, source: 'AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY', ...where };
  if (set(env.AWS_WEB_IDENTITY_TOKEN_FILE) && set(env.AWS_ROLE_ARN))
    return { found: true, source: 'AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN', ...where };
  if (
    set(env.AWS_CONTAINER_CREDENTIALS_RELATIVE_URI) ||
    set(env.AWS_CONTAINER_CREDENTIALS_FULL_URI)
  )
    return { found: true, source: 'the container credentials endpoint', ...where };
  for (const [file, section] of [
    [credentialsFile, inCredentials],
    [configFile, inConfig],
  ] as const) {
    const key = PROFILE_SOURCES.find((k) => set(section?.get(k)));
    if (key) return { found: true, source: `profile ${profile} (${key}) in ${file}`, ...where };
    if (set(section?.get('credential_source')))
      return { found: true, source: `profile ${profile} (credential_source) in ${file}`, ...where };
  }
  const state = (file: string, sections: Map<string, unknown> | undefined, name: string) =>
    sections === undefined
      ? `${file} (no such file)`
      : `${file} (${sections.has(name) ? `profile ${profile} has no credentials` : `no profile ${profile}`})`;
  return {
    found: false,
    looked: [
      'AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (unset)',
      'AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN (unset)',
      'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI / _FULL_URI (unset)',
      `AWS_PROFILE (${set(env.AWS_PROFILE) ? env.AWS_PROFILE : 'unset: profile default'})`,
      state(credentialsFile, credentials, profile),
      state(configFile, config, profile === 'default' ? 'default' : `profile ${profile}`),
    ],
    ...where,
  };
}
