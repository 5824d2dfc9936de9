/** How the engine reports that it stopped scheduling after a fault of the machine. */

/** The engine stopped scheduling because of a fault; what it had committed is kept. */
export class EngineHaltedError extends Error {
  readonly code = 'ENGINE_HALTED';
  constructor(
    message: string,
    readonly reason: unknown,
  ) {
    super(message);
    this.name = 'EngineHaltedError';
  }
}
