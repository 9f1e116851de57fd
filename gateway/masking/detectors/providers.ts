/**
 * Provider credentials with a documented, prefixed format: the formats the providers publish and
 * gitleaks' default rules (config/gitleaks.toml) encode, one detector per provider so a
 * placeholder, a hit count or an exemption names it. Each is found by its literal prefix first
 * (a substring check), then one bounded regex; none needs surrounding context.
 */
import { regexDetector } from "./regex-detector.js";
import type { Detector } from "../types.js";
import type { TextFeatures } from "../features.js";

const tokenShaped = (f: TextFeatures): boolean => f.longestTokenRun >= 16;
const hasDigitAndLetter = (v: string): boolean => /[0-9]/.test(v) && /[A-Za-z]/.test(v);

interface ProviderFormat {
  id: string;
  /** Literal prefixes (any of): the regex runs only when one occurs. */
  anyOf: readonly string[];
  re: RegExp;
  /** Hex-only or letter-only bodies need both digits and letters to count (not a word, not a hash). */
  mixed?: boolean;
  /** Bodies with `~` or `.` (Azure's) may have no 16-character token run: skip the pre-check. */
  anyShape?: boolean;
}

export const PROVIDER_FORMATS: readonly ProviderFormat[] = [
  { id: "sendgrid_key", anyOf: ["SG."], re: /\bSG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])/g },
  { id: "huggingface_token", anyOf: ["hf_"], re: /\bhf_[A-Za-z0-9]{34}\b/g },
  { id: "shopify_token", anyOf: ["shpat_", "shpss_", "shpca_", "shppa_"], re: /\bshp(?:at|ss|ca|pa)_[a-fA-F0-9]{32}\b/g },
  { id: "pypi_token", anyOf: ["pypi-AgEIcHlwaS5vcmc"], re: /\bpypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{50,1000}/g },
  { id: "digitalocean_token", anyOf: ["dop_v1_", "doo_v1_", "dor_v1_"], re: /\bdo[opr]_v1_[a-f0-9]{64}\b/g },
  { id: "vault_token", anyOf: ["hvs.", "hvb.", "hvr."], re: /\bhv[sbr]\.[A-Za-z0-9_-]{24,400}/g, mixed: true },
  { id: "age_secret_key", anyOf: ["AGE-SECRET-KEY-1"], re: /\bAGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}\b/g },
  { id: "doppler_token", anyOf: ["dp."], re: /\bdp\.(?:pt|st|sa|ct|scim|audit)\.[A-Za-z0-9]{40,44}\b/g },
  { id: "linear_key", anyOf: ["lin_api_"], re: /\blin_api_[A-Za-z0-9]{40}\b/g },
  { id: "postman_key", anyOf: ["PMAK-"], re: /\bPMAK-[a-fA-F0-9]{24}-[a-fA-F0-9]{34}\b/g },
  { id: "databricks_token", anyOf: ["dapi"], re: /\bdapi[a-f0-9]{32}(?:-\d)?\b/g, mixed: true },
  { id: "grafana_token", anyOf: ["glc_", "glsa_"], re: /\b(?:glc_[A-Za-z0-9+/]{32,400}={0,3}|glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8}\b)/g },
  { id: "twilio_key", anyOf: ["SK"], re: /\bSK[0-9a-fA-F]{32}\b/g, mixed: true },
  { id: "square_token", anyOf: ["EAAA", "sq0atp-", "sq0csp-"], re: /\b(?:EAAA|sq0atp-|sq0csp-)[A-Za-z0-9_-]{22,60}(?![A-Za-z0-9_-])/g, mixed: true },
  { id: "pulumi_token", anyOf: ["pul-"], re: /\bpul-[a-f0-9]{40}\b/g },
  { id: "rubygems_key", anyOf: ["rubygems_"], re: /\brubygems_[a-f0-9]{48}\b/g },
  { id: "planetscale_token", anyOf: ["pscale_"], re: /\bpscale_(?:tkn|pw|oauth)_[A-Za-z0-9_=.-]{32,64}/g },
  { id: "notion_token", anyOf: ["ntn_"], re: /\bntn_[0-9]{11}[A-Za-z0-9]{35}\b/g },
  { id: "heroku_key", anyOf: ["HRKU-AA"], re: /\bHRKU-AA[0-9a-zA-Z_-]{58}(?![0-9a-zA-Z_-])/g },
  { id: "alibaba_key", anyOf: ["LTAI"], re: /\bLTAI[A-Za-z0-9]{20}\b/g, mixed: true },
  { id: "dynatrace_token", anyOf: ["dt0c01."], re: /\bdt0c01\.[A-Za-z0-9]{24}\.[A-Za-z0-9]{64}\b/g },
  { id: "perplexity_key", anyOf: ["pplx-"], re: /\bpplx-[A-Za-z0-9]{48}\b/g },
  { id: "terraform_token", anyOf: [".atlasv1."], re: /\b[A-Za-z0-9]{14}\.atlasv1\.[A-Za-z0-9_=-]{60,70}/g },
  { id: "artifactory_key", anyOf: ["AKCp"], re: /\bAKCp[A-Za-z0-9]{69}\b/g },
  { id: "onepassword_token", anyOf: ["ops_eyJ"], re: /\bops_eyJ[A-Za-z0-9+/]{250,8000}={0,3}/g },
  { id: "atlassian_token", anyOf: ["ATATT3"], re: /\bATATT3[A-Za-z0-9_=-]{186}(?![A-Za-z0-9_=-])/g },
  { id: "newrelic_key", anyOf: ["NRAK-"], re: /\bNRAK-[A-Z0-9]{27}\b/g },
  { id: "sentry_token", anyOf: ["sntrys_", "sntryu_"], re: /\bsntry[su]_[A-Za-z0-9+/=_]{40,400}/g },
  { id: "telegram_bot_token", anyOf: [":AA"], re: /\b[0-9]{8,10}:AA[A-Za-z0-9_-]{33}(?![A-Za-z0-9_-])/g },
  { id: "azure_client_secret", anyOf: ["Q~"], re: /(?<![A-Za-z0-9_~.])[A-Za-z0-9_~.]{3}\dQ~[A-Za-z0-9_~.-]{31,34}(?![A-Za-z0-9_~.-])/g, anyShape: true },
  { id: "flyio_token", anyOf: ["fo1_"], re: /\bfo1_[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])/g },
  { id: "openshift_token", anyOf: ["sha256~"], re: /\bsha256~[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])/g },
  { id: "prefect_key", anyOf: ["pnu_"], re: /\bpnu_[A-Za-z0-9]{36}\b/g },
  { id: "readme_key", anyOf: ["rdme_"], re: /\brdme_[a-z0-9]{70}\b/g },
  { id: "infracost_key", anyOf: ["ico-"], re: /\bico-[A-Za-z0-9]{32}\b/g, mixed: true },
];

export const providerDetectors: readonly Detector[] = PROVIDER_FORMATS.map((p) =>
  regexDetector({
    ...(p.anyShape ? {} : { needs: tokenShaped }),
    id: p.id,
    category: "credential",
    re: p.re,
    // Found by its literal prefixes first: one pass over the text finds those of every detector.
    anyOf: p.anyOf,
    ...(p.mixed ? { validate: (v: string) => hasDigitAndLetter(v.slice((p.anyOf.find((a) => v.startsWith(a)) ?? "").length)) } : {}),
  }),
);
