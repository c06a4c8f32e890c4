import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Prometheus metrics of one process, served at GET /metrics. One registry per process (per createQrun in tests). */
export class Metrics {
  readonly registry = new Registry();
  readonly queriesFinished = new Counter({
    name: 'qrun_queries_finished_total',
    help: 'Queries that reached a terminal status in this process, by status.',
    labelNames: ['status'] as const,
    registers: [this.registry],
  });
  readonly queriesRunning = new Gauge({
    name: 'qrun_queries_running',
    help: 'Queries running in this process now.',
    registers: [this.registry],
  });
  readonly rowsWritten = new Counter({
    name: 'qrun_rows_written_total',
    help: 'Result rows encoded and stored.',
    registers: [this.registry],
  });
  readonly pagesWritten = new Counter({
    name: 'qrun_pages_written_total',
    help: 'Result pages stored.',
    registers: [this.registry],
  });
  readonly httpDuration = new Histogram({
    name: 'qrun_http_request_duration_seconds',
    help: 'HTTP request duration by route and status code.',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60],
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'qrun_' });
  }
}
