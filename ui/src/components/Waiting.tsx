/** Why a job waits, as the API explains it: what it needs, and what it waits for. */
import { Link } from 'react-router';
import type { WaitingReason } from '../../../src/server/ui/types.js';
import { mebibytes } from '../format.js';
import { StatusBadge, Time } from './common.js';

const KIND: Record<WaitingReason['kind'], string> = {
  dependency: 'waits for jobs it depends on',
  resources: 'waits for room',
  queue: 'waits its turn',
  'never-fits': 'never fits',
  disabled: 'queue disabled',
  sizing: 'waits for a larger size',
  starting: 'starting',
};

const amount = (resource: 'vcpus' | 'memoryMiB', n: number) =>
  resource === 'vcpus' ? `${n} vCPU` : mebibytes(n);

export function WaitingView({ waiting }: { waiting: WaitingReason }) {
  return (
    <div className={`waiting kind-${waiting.kind}`}>
      <div>
        <span
          className={`tag ${waiting.kind === 'never-fits' || waiting.kind === 'disabled' ? 'tag-bad' : 'tag-wait'}`}
        >
          {KIND[waiting.kind]}
        </span>{' '}
        {waiting.message}
      </div>
      <div className="muted small">
        needs {waiting.needs.vcpus} vCPU, {mebibytes(waiting.needs.memoryMiB)}
        {waiting.ahead > 0 && ` · ${waiting.ahead} job${waiting.ahead === 1 ? '' : 's'} ahead`}
        {waiting.waitingSince !== undefined && (
          <>
            {' · waiting since '}
            <Time ms={waiting.waitingSince} compact />
          </>
        )}
      </div>
      {waiting.shortages && waiting.shortages.length > 0 && (
        <ul className="small">
          {waiting.shortages.map((s) => (
            <li key={`${s.computeEnvironment}/${s.resource}`}>
              <code>{s.computeEnvironment}</code>: needs {amount(s.resource, s.needed)},{' '}
              {amount(s.resource, s.free)} free of {amount(s.resource, s.total)} (short by{' '}
              {amount(s.resource, s.short)})
            </li>
          ))}
        </ul>
      )}
      {waiting.waitingOn && waiting.waitingOn.length > 0 && (
        <ul className="small">
          {waiting.waitingOn.map((d) => (
            <li key={d.jobId}>
              <Link to={`/jobs/${encodeURIComponent(d.jobId)}`}>{d.jobName}</Link>{' '}
              <StatusBadge status={d.status} />
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
