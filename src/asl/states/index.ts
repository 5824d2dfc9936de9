/** The handler of each state type. */
import type { StateType } from '../types.js';
import { choiceState } from './choice.js';
import { failState } from './fail.js';
import type { StateHandler } from './handler.js';
import { mapState } from './map.js';
import { parallelState } from './parallel.js';
import { passState } from './pass.js';
import { succeedState } from './succeed.js';
import { taskState } from './task.js';
import { waitState } from './wait.js';

export const STATE_HANDLERS: Record<StateType, StateHandler<never>> = {
  Pass: passState as StateHandler<never>,
  Task: taskState as StateHandler<never>,
  Choice: choiceState as StateHandler<never>,
  Wait: waitState as StateHandler<never>,
  Succeed: succeedState as StateHandler<never>,
  Fail: failState as StateHandler<never>,
  Parallel: parallelState as StateHandler<never>,
  Map: mapState as StateHandler<never>,
};
