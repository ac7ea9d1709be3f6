// A/B assignment on the device, identical to the Pravis gateway's (GrowthBook's v2 hash and bucket ranges):
// `getFeatureVariant(experiment, userId, { client })` with an experiment from `GET /api/v1/features`.
// The shared vectors in schemas/experiments/assignment_vectors.json keep this file, the Python SDK and the
// server equal. With a `client`, the assignment is logged as an `experiment_exposure` event.

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/** 32-bit FNV-1a over UTF-16 code units (GrowthBook's `hashFnv32a`). */
export function fnv1a32(text) {
  let hash = FNV_OFFSET;
  for (let i = 0; i < text.length; i++) {
    hash = Math.imul(hash ^ text.charCodeAt(i), FNV_PRIME) >>> 0;
  }
  return hash >>> 0;
}

/** GrowthBook hash version 2: the user's position in [0, 1). */
export function hashUnit(seed, unitId) {
  return (fnv1a32(String(fnv1a32(seed + unitId))) % 10000) / 10000;
}

function equalWeights(count) {
  return count > 0 ? new Array(count).fill(1 / count) : [];
}

/** GrowthBook's getBucketRanges: variant i owns [cumulative, cumulative + coverage * weight). */
export function bucketRanges(count, coverage = 1, weights = null) {
  const clamped = Math.min(Math.max(coverage, 0), 1);
  let chosen = weights || equalWeights(count);
  const total = chosen.reduce((sum, w) => sum + w, 0);
  if (chosen.length !== count || total < 0.99 || total > 1.01) chosen = equalWeights(count);
  let cumulative = 0;
  return chosen.map((weight) => {
    const start = cumulative;
    cumulative += weight;
    return [start, start + clamped * weight];
  });
}

/** Index of the range holding n, or -1 (outside coverage). */
export function chooseVariation(n, ranges) {
  for (let i = 0; i < ranges.length; i++) {
    if (n >= ranges[i][0] && n < ranges[i][1]) return i;
  }
  return -1;
}

/** The variant `userId` gets: `{experiment, variant, variation_id, in_experiment, reason}`, like the server. */
export function getFeatureVariant(experiment, userId, { client } = {}) {
  const variants = experiment.variants;
  let index = 0;
  let reason = 'not_running';
  if (experiment.status === 'running') {
    const n = hashUnit(experiment.seed || experiment.key, String(userId));
    const ranges = bucketRanges(variants.length, experiment.coverage ?? 1, variants.map((v) => v.weight));
    index = chooseVariation(n, ranges);
    reason = index < 0 ? 'outside_coverage' : 'assigned';
  }
  const inExperiment = reason === 'assigned';
  const result = {
    experiment: experiment.key,
    variant: variants[inExperiment ? index : 0].key,
    variation_id: inExperiment ? index : 0,
    in_experiment: inExperiment,
    reason,
  };
  if (client) {
    const properties = { reason, ...(experiment.version ? { definition_version: experiment.version } : {}) };
    client.track('experiment_exposure', properties, {
      user_id: String(userId),
      experiment_key: result.experiment,
      variant: result.variant,
      in_experiment: inExperiment,
    });
  }
  return result;
}
