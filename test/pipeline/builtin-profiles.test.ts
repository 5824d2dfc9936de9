/**
 * The profiles every home has (`local`, `containers`, `aws`), a config file's profiles of the
 * same name over them, and where a run's store comes from: `--store`, the profile's `store:`,
 * the home's.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BUILTIN_PROFILES, chooseStore, ConfigError, profileOf } from '../../src/app/config.js';
import { inlinePipeline, strand } from './cli.js';

describe('built-in profiles', () => {
  it('are there with no config file; a file profile of the same name overrides key by key', () => {
    expect(Object.keys(BUILTIN_PROFILES)).toEqual(['local', 'containers', 'aws']);
    expect(profileOf({}, 'local')).toEqual({ executor: 'local' });
    expect(profileOf({}, 'containers')).toEqual({ executor: 'podman' });
    expect(profileOf({}, 'aws')).toEqual({ executor: 'aws-batch' });
    expect(profileOf({}, 'other')).toBeUndefined();
    expect(
      profileOf(
        { profiles: { containers: { executor: 'docker', results: 'r.db' } } },
        'containers',
      ),
    ).toEqual({ executor: 'docker', results: 'r.db' });
    expect(profileOf({ profiles: { aws: { store: 's3://b' } } }, 'aws')).toEqual({
      executor: 'aws-batch',
      store: 's3://b',
    });
  });

  it('choose the store: --store, then the profile, then the home', () => {
    const config = { profiles: { lab: { store: 'lab-store' }, abs: { store: 's3://lab' } } };
    expect(chooseStore(config, {}, '/h')).toEqual({ url: undefined, from: 'the default' });
    expect(chooseStore(config, { profile: 'lab' }, '/h')).toEqual({
      url: '/h/lab-store',
      from: 'profile lab',
    });
    expect(chooseStore(config, { profile: 'abs' }, '/h').url).toBe('s3://lab');
    expect(chooseStore(config, { flag: 's3://x', profile: 'abs' }, '/h')).toEqual({
      url: 's3://x',
      from: '--store',
    });
    expect(() => chooseStore(config, { profile: 'nope' }, '/h')).toThrow(
      /--profile nope: \/h\/config.yaml has no such profile, nor is one built in \(profiles: local, containers, aws, lab, abs\)/,
    );
  });

  it('aws names what it still needs', () => {
    const err = (config: object, flag?: string) => {
      try {
        chooseStore(config, { profile: 'aws', ...(flag ? { flag } : {}) }, '/h');
        return undefined;
      } catch (e) {
        expect(e).toBeInstanceOf(ConfigError);
        return (e as Error).message;
      }
    };
    expect(err({})).toBe(
      '--profile aws runs jobs on AWS Batch, which needs a store (--store s3://BUCKET, or profiles.aws.store), executors.aws-batch.jobQueue, executors.aws-batch.stageImage; set them in /h/config.yaml (docs/aws-batch-executor.md)',
    );
    expect(err({}, 's3://b')).toContain(
      'needs executors.aws-batch.jobQueue, executors.aws-batch.stageImage;',
    );
    expect(
      err({ executors: { 'aws-batch': { jobQueue: 'q', stageImage: 'i' } } }, 's3://b'),
    ).toBeUndefined();
  });

  it('through strand run: local runs, aws without its settings is exit 2 before anything', async () => {
    const p = inlinePipeline([
      'name: profiled',
      'samples: [ { id: A } ]',
      'steps:',
      "  one: { image: debian:bookworm-slim, command: [sh, -c, 'echo hi > out.txt'], outputs: { OUT: out.txt } }",
    ]);
    const dry = await strand(
      'run',
      p.file,
      '--home',
      p.home,
      '--dry-run',
      '--json',
      '--profile',
      'local',
    );
    expect(dry.err).toBe('');
    expect((JSON.parse(dry.out) as { executor: string }).executor).toBe('local');

    const aws = await strand('run', p.file, '--home', p.home, '--profile', 'aws');
    expect(aws.code).toBe(2);
    expect(aws.err).toContain('--profile aws runs jobs on AWS Batch, which needs a store');
    expect(existsSync(join(p.home, 'store', 'profiled'))).toBe(false);

    // The file's `containers` keeps jobs on this machine and sends outputs to its own store.
    mkdirSync(p.home, { recursive: true });
    writeFileSync(
      join(p.home, 'config.yaml'),
      'profiles:\n  containers: { executor: local, store: lab-store }\n',
    );
    const run = await strand('run', p.file, '--home', p.home, '--profile', 'containers');
    expect(run.code).toBe(0);
    expect(existsSync(join(p.home, 'lab-store', 'profiled', 'A', 'one', 'out.txt'))).toBe(true);
  }, 60_000);
});
