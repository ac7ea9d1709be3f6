import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { bucketRanges, chooseVariation, getFeatureVariant, hashUnit } from '../src/experiments.js';

const vectors = JSON.parse(
  readFileSync(new URL('../../../schemas/experiments/assignment_vectors.json', import.meta.url), 'utf8'),
);

test('hash vectors shared with the server and GrowthBook', () => {
  for (const c of vectors.hash) assert.equal(hashUnit(c.seed, c.value), c.expected, `${c.seed}|${c.value}`);
});

test('bucket range vectors', () => {
  for (const c of vectors.bucket_ranges) {
    const got = bucketRanges(c.variations, c.coverage, c.weights);
    assert.equal(got.length, c.expected.length, c.name);
    got.forEach(([start, end], i) => {
      assert.ok(Math.abs(start - c.expected[i][0]) < 1e-9 && Math.abs(end - c.expected[i][1]) < 1e-9, c.name);
    });
  }
});

test('choose variation vectors', () => {
  for (const c of vectors.choose_variation) assert.equal(chooseVariation(c.n, c.ranges), c.expected, c.name);
});

test('assignment vectors', () => {
  for (const c of vectors.assignments) {
    const { variant, variation_id, in_experiment } = getFeatureVariant(c.experiment, c.user_id);
    assert.deepEqual({ variant, variation_id, in_experiment }, c.expected, c.name);
  }
});

test('with a client the exposure is tracked', () => {
  const tracked = [];
  const client = { track: (...args) => tracked.push(args) };
  const experiment = vectors.assignments.find((c) => c.experiment.key === 'checkout-button').experiment;
  const result = getFeatureVariant({ ...experiment, version: 4 }, 'u-1', { client });
  assert.deepEqual(tracked, [
    [
      'experiment_exposure',
      { reason: result.reason, definition_version: 4 },
      { user_id: 'u-1', experiment_key: experiment.key, variant: result.variant, in_experiment: result.in_experiment },
    ],
  ]);
});
