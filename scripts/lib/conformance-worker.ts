/**
 * A worker thread of the conformance runner: runs the cases it is sent, one at a time, and
 * answers each with its result. The parent stops this worker if a case never finishes.
 */
import { parentPort } from 'node:worker_threads';
import { runCase, type WorkerReply, type WorkerRequest } from './conformance.js';

const port = parentPort;
if (!port) throw new Error('conformance-worker.ts runs as a worker thread, not on its own');
port.on('message', (request: WorkerRequest) => {
  void runCase(request.case, request.timeoutMs).then((result) => {
    port.postMessage({ index: request.index, result } satisfies WorkerReply);
  });
});
port.postMessage({ ready: true } satisfies WorkerReply);
