import { describe, expect, it } from 'vitest';
import {
  parseDuration,
  parseRetry,
  parseSize,
  parseVcpus,
  type UnitResult,
} from '../../src/pipeline/units.js';

function value(r: UnitResult<number>): number | undefined {
  return r.ok ? r.value : undefined;
}

function failure(r: UnitResult<number>): string {
  return r.ok ? `ok ${r.value}` : `${r.message} (${r.hint})`;
}

describe('parseSize → MiB', () => {
  it.each<[unknown, number]>([
    [512, 512],
    [128, 128],
    ['4096', 4096],
    ['512MiB', 512],
    ['512Mi', 512],
    ['512M', 512],
    ['4GiB', 4096],
    ['4Gi', 4096],
    ['4G', 4096],
    ['1.5GiB', 1536],
    ['0.5G', 512],
    ['1TiB', 1048576],
    ['2T', 2097152],
  ])('%j = %i MiB', (input, mib) => expect(value(parseSize(input))).toBe(mib));

  it.each<[unknown, string]>([
    ['4 GB', '"4 GB" is not a size (use 4GiB or 4096MiB)'],
    ['4GB', '"4GB" is not a size (use 4GiB or 4096MiB)'],
    ['4gb', '"4gb" is not a size (use 4GiB or 4096MiB)'],
    ['4gib', '"4gib" is not a size (use 4GiB or 4096MiB)'],
    ['512mb', '"512mb" is not a size (use 512MiB)'],
    ['1.5GB', '"1.5GB" is not a size (use 1.5GiB or 1536MiB)'],
    ['0.1GiB', '"0.1GiB" is not a whole number of MiB (use 103MiB)'],
    [-1, '-1 is not a size (sizes are positive: 512MiB, 4GiB)'],
    [0, '0 is not a size (sizes are positive: 512MiB, 4GiB)'],
    ['0GiB', '"0GiB" is not a size (sizes are positive: 512MiB, 4GiB)'],
    ['-2G', '"-2G" is not a size (sizes are positive: 512MiB, 4GiB)'],
    [8, '8 is ambiguous: a plain number is MiB (write 8GiB, or 8MiB if you really mean MiB)'],
    [1.5, '1.5 is not a size (a plain number is MiB; write 1.5GiB if you meant GiB)'],
    ['lots', '"lots" is not a size (use 4GiB or 4096MiB)'],
    ['4 KB', '"4 KB" is not a size (use 512MiB, 4GiB or 1TiB)'],
  ])('%j is rejected', (input, expected) => expect(failure(parseSize(input))).toBe(expected));
});

describe('parseDuration → seconds', () => {
  it.each<[unknown, number]>([
    [90, 90],
    ['90', 90],
    ['30s', 30],
    ['10m', 600],
    ['2h', 7200],
    ['1h30m', 5400],
    ['1d', 86400],
    ['1d2h3m4s', 93784],
  ])('%j = %i s', (input, seconds) => expect(value(parseDuration(input))).toBe(seconds));

  it.each<[unknown, string]>([
    ['1.5h', '"1.5h" is not a duration (use 1h30m)'],
    ['2 hours', '"2 hours" is not a duration (use 2h)'],
    ['30min', '"30min" is not a duration (use 30m)'],
    ['1h 30m', '"1h 30m" is not a duration (use 1h30m)'],
    ['30m1h', '"30m1h" is not a duration (use 1h30m)'],
    ['forever', '"forever" is not a duration (use 90s, 30m, 2h, 1h30m or 1d)'],
    [0, '0 is not a duration (durations are positive; use 90s, 30m, 2h, 1h30m or 1d)'],
    ['0s', '"0s" is not a duration (durations are positive; use 90s, 30m, 2h, 1h30m or 1d)'],
    ['-5m', '"-5m" is not a duration (durations are positive; use 90s, 30m, 2h, 1h30m or 1d)'],
    [1.5, '1.5 is not a duration (durations are positive; use 90s, 30m, 2h, 1h30m or 1d)'],
  ])('%j is rejected', (input, expected) => expect(failure(parseDuration(input))).toBe(expected));
});

describe('parseVcpus and parseRetry', () => {
  it.each([0.25, 0.5, 1, 2.75, 96])('%s vCPUs is allowed', (n) =>
    expect(value(parseVcpus(n))).toBe(n),
  );
  it.each<[unknown, string]>([
    [0, '0 is not a vCPU count (use a positive number such as 1, 2 or 0.5)'],
    [-1, '-1 is not a vCPU count (use a positive number such as 1, 2 or 0.5)'],
    [0.3, '0.3 is not a vCPU count (use a multiple of 0.25, such as 0.25)'],
    [1.1, '1.1 is not a vCPU count (use a multiple of 0.25, such as 1)'],
    [0.1, '0.1 is not a vCPU count (use a multiple of 0.25, such as 0.25)'],
  ])('%j vCPUs is rejected', (input, expected) =>
    expect(failure(parseVcpus(input))).toBe(expected),
  );
  it.each([0, 1, 9])('retry %i is allowed', (n) => expect(value(parseRetry(n))).toBe(n));
  it.each([-1, 10, 1.5])('retry %s is rejected', (n) =>
    expect(failure(parseRetry(n))).toMatch(/is not a retry count \(use a whole number from 0 to 9/),
  );
});
