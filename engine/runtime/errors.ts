/** A problem a user can cause (a bad flag, a missing or malformed checkpoint): the CLI prints the message only. */
export class EngineError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'EngineError';
    this.code = code;
  }
}
