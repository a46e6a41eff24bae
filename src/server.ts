import { ConfigError, loadConfig } from './config/load.js';
import { buildApp } from './app.js';
import { createUsher } from './index.js';

/** Standalone entry: load config, build, listen. Exit 2 on configuration errors. */
async function main() {
  let config;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      for (const line of err.problems) process.stderr.write(`${line}\n`);
      process.exit(2);
    }
    throw err;
  }
  const usher = await createUsher({ config });
  const server = buildApp(usher).listen(config.port, config.host, () => {
    usher.log.info({ port: config.port, host: config.host }, 'usher listening');
  });
  server.on('error', (err) => {
    usher.log.fatal({ err }, 'cannot listen');
    process.exit(1);
  });
  const stop = () => {
    server.close(() => void usher.close().then(() => process.exit(0)));
    setTimeout(() => process.exit(0), 10_000).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`usher: cannot start: ${(err as Error)?.message ?? String(err)}\n`);
  process.exit(1);
});
