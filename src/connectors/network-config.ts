import type { ConfigField } from './connector.js';

/** A network database's configuration after the generic field validation. */
export interface NetworkConfig {
  hostname: string;
  port: number;
  database: string;
  username: string;
  password?: string;
  ssl: boolean;
}

/**
 * The configuration fields of a database reached over the network (PostgreSQL, MySQL/MariaDB):
 * the same six fields, differing only in the default port and a few words.
 */
export function networkConfigFields(options: {
  defaultPort: number;
  database: string;
  login: string;
}): readonly ConfigField[] {
  return [
    {
      name: 'hostname',
      type: 'string',
      required: true,
      secret: false,
      target: true,
      description: 'Server host name or IP address.',
    },
    {
      name: 'port',
      type: 'integer',
      required: false,
      secret: false,
      target: true,
      default: options.defaultPort,
      description: 'Server TCP port.',
    },
    {
      name: 'database',
      type: 'string',
      required: true,
      secret: false,
      target: true,
      description: options.database,
    },
    {
      name: 'username',
      type: 'string',
      required: true,
      secret: false,
      target: true,
      description: `${options.login} to log in as.`,
    },
    {
      name: 'password',
      type: 'string',
      required: false,
      secret: true,
      description: `Password of the ${options.login.toLowerCase()}.`,
    },
    {
      name: 'ssl',
      type: 'boolean',
      required: false,
      secret: false,
      // Turning TLS off would send the kept password over plain TCP.
      target: true,
      default: false,
      description: 'Connect over TLS and verify the server certificate.',
    },
  ];
}
