import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ID_PATTERN } from '@tokenmeter/billing/usage-schemas';
import { EVENT_ID_NAMESPACE, eventIdForRequest, uuidV5 } from './event-id';

// RFC 9562's predefined namespaces.
const NAMESPACE_DNS = '6ba7b810-9dad-11d1-80b4-00c04fd430c8';
const NAMESPACE_URL = '6ba7b811-9dad-11d1-80b4-00c04fd430c8';

describe('minted event ids: UUIDv5 of the request id', () => {
  it('is RFC 9562 version 5 (the well-known www.example.com vector)', () => {
    expect(uuidV5(NAMESPACE_DNS, 'www.example.com')).toBe('2ed6657d-e927-568b-95e1-2665a8aea6a2');
  });

  it("lives in the namespace the README documents: UUIDv5 of the schema's $id in the URL namespace", () => {
    const schema = JSON.parse(readFileSync(join(__dirname, '..', '..', '..', 'docs', 'usage-event.schema.json'), 'utf8')) as { $id: string };
    expect(uuidV5(NAMESPACE_URL, schema.$id)).toBe(EVENT_ID_NAMESPACE);
  });

  it('gives the ids Python uuid.uuid5 gives (the README example), UTF-8 names included', () => {
    expect(eventIdForRequest('req_8d1e')).toBe('00ef7942-6d4f-5086-a7b4-8522923eda8f');
    expect(eventIdForRequest('chatcmpl-ü')).toBe('664fdc19-72c0-53be-8473-13ea841db0f2');
  });

  it('is the same for the same request id, different for another request id or namespace, and a valid event_id', () => {
    const id = eventIdForRequest('chatcmpl-9f1c2e');
    expect(eventIdForRequest('chatcmpl-9f1c2e')).toBe(id);
    expect(eventIdForRequest('chatcmpl-9f1c2f')).not.toBe(id);
    expect(eventIdForRequest('chatcmpl-9f1c2e', NAMESPACE_DNS)).not.toBe(id);
    expect(id).toMatch(ID_PATTERN);
  });

  it('refuses a namespace that is not a UUID', () => {
    expect(() => eventIdForRequest('req_1', 'gateway-eu')).toThrow('namespace must be a UUID');
  });
});
