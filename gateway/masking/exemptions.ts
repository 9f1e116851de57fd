// Which masked types a caller may receive unmasked: the connection's role exemptions, decided here
// (not by the data path) so the rule lives next to the masking it relaxes. The record always keeps
// the fully masked view; only the delivery to this caller changes.

export interface MaskingExemption {
  groups: readonly string[];
  types: readonly string[];
  justificationRequired?: boolean | undefined;
}

/** The types exempted for a caller in these groups, given whether it stated a justification. */
export function exemptTypesFor(exemptions: readonly MaskingExemption[], groups: readonly string[], justification: string | undefined): Set<string> {
  const exempt = new Set<string>();
  for (const e of exemptions) {
    if (!e.groups.some((g) => groups.includes(g))) continue;
    if (e.justificationRequired && !justification) continue;
    for (const t of e.types) exempt.add(t);
  }
  return exempt;
}
