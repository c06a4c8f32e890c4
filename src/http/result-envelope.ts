import type { PageFrame } from '../encoding/page-frame.js';
import type { FinishedResult } from '../service/query-service.js';

/**
 * The JSON around one stored page in GET /api/queries/{id} (CONTRACT.md "Getting status and results"):
 * `{"data":{…,"results":` ‖ page ‖ `,"error":null},"links":{…}}`. The page is never parsed or
 * re-encoded: the result store reads it straight into the space between these two parts. The URL shape
 * of the links is the HTTP layer's; the service hands over only the page tokens.
 */
export function resultEnvelope(result: FinishedResult): PageFrame {
  const link = (token: string | null) =>
    token === null ? null : `/api/queries/${result.id}?page=${encodeURIComponent(token)}`;
  const head =
    `{"data":{"id":${JSON.stringify(result.id)},"status":"done","fields":${result.fieldsJson},` +
    `"schema":${result.schemaJson},"count":${result.count},"truncated":${result.truncated},` +
    `"expires":${JSON.stringify(result.expires)},"results":`;
  const links = JSON.stringify({
    next: link(result.nextPage),
    previous: link(result.previousPage),
    export: `/api/queries/${result.id}/export`,
  });
  return { head: Buffer.from(head), tail: Buffer.from(`,"error":null},"links":${links}}`) };
}
