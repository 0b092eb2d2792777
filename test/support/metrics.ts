import type { Express } from 'express';
import request from 'supertest';

/**
 * One scrape of the health app's /metrics, read by series (`name{labels}` exactly as exported);
 * a series that was not exported reads as 0.
 */
export async function scrapeMetrics(healthApp: Express): Promise<(series: string) => number> {
  const text = (await request(healthApp).get('/metrics').expect(200)).text;
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    samples.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return (series) => samples.get(series) ?? 0;
}
