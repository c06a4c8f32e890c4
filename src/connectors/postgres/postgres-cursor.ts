import Cursor from 'pg-cursor';

/** The part of pg's Connection a refused COPY FROM STDIN needs (absent from its type declarations). */
interface CopyConnection {
  sendCopyFail(message: string): void;
}

/**
 * pg-cursor plus the two COPY messages it lacks: without them, a user's `COPY … FROM STDIN` or
 * `COPY … TO STDOUT` makes pg call a missing method inside the socket handler and the process dies.
 * FROM STDIN is refused (the server then reports an error); TO STDOUT data is dropped and flagged,
 * and the stream reports it as unsupported.
 */
export class QrunCursor extends Cursor {
  copyOut = false;

  handleCopyInResponse(connection: CopyConnection): void {
    connection.sendCopyFail('qrun does not send data to COPY FROM STDIN.');
  }

  handleCopyData(): void {
    this.copyOut = true;
  }
}
