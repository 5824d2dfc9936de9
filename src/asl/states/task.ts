/** Task: asks the driver to invoke a resource and continues with its result. */
import { evaluateJsonataTemplate } from '../jsonata.js';
import type { TaskState } from '../types.js';
import { readIntegerField } from './common.js';
import type { StateHandler } from './handler.js';

export const taskState: StateHandler<TaskState> = {
  async run(rt, thread, def) {
    const jsonata = rt.queryLanguage(def) === 'JSONata';
    const input = jsonata
      ? def.Arguments !== undefined
        ? await evaluateJsonataTemplate(def.Arguments, rt.jsonataScope(thread), 'Arguments')
        : thread.input
      : rt.effectiveInput(thread, def.Parameters);
    const timeoutSeconds = await readIntegerField(
      rt,
      thread,
      thread.input,
      def.TimeoutSeconds,
      def.TimeoutSecondsPath,
      'TimeoutSeconds',
    );
    const heartbeatSeconds = await readIntegerField(
      rt,
      thread,
      thread.input,
      def.HeartbeatSeconds,
      def.HeartbeatSecondsPath,
      'HeartbeatSeconds',
    );
    const credentials =
      def.Credentials === undefined
        ? undefined
        : jsonata
          ? await evaluateJsonataTemplate(def.Credentials, rt.jsonataScope(thread), 'Credentials')
          : def.Credentials;
    rt.invokeTask(thread, def.Resource, input, { timeoutSeconds, heartbeatSeconds, credentials });
  },
};
