/**
 * Source of the labelled masking corpus. Each case is realistic text with the values that must
 * be masked written as ⟦type:value⟧; `generate.ts` turns these into corpus.jsonl with
 * character spans. Cases without markers are hard negatives: nothing in them may be masked.
 *
 * Decisions recorded here:
 * - AWS's documented example key AKIAIOSFODNN7EXAMPLE (and the wJalr… example secret) is
 *   labelled as a positive: a gateway cannot tell documentation from a leak, so it masks what
 *   looks live.
 * - For url_password and secret_assignment only the password/value is the span, not the name.
 * - Credential examples marked "secretlint README" are taken from the README files of the
 *   @secretlint/secretlint-rule-* packages (MIT, by azu), an independent rule set.
 */
export interface CorpusSource {
  source: string;
  text: string;
  note?: string;
}

const ghp = "ghp_" + "R2d2C3p0BeepBoopWhirrClick0123456789";
const gho = "gho_" + "16C7e42F292c6912E7710c838347Ae178B4a";
const ghs = "ghs_" + "Zx9yW8vU7tS6rQ5pO4nM3lK2jI1hG0fE9dC8";
const ghu = "ghu_" + "aB3dE6gH9jK2mN5pQ8sT1vW4yZ7bC0eF3hI6";
const ghr = "ghr_" + "1B4a2e77838347a7E420ce178F2E7c6912E1";
const pat = "github_pat_" + "11ABCDEFG0123456789abc_" + "Zy9Xw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0Fe9Dc8Ba7Zy9Xw8Vu7Ts6Rq5Po4Nm3Lk2Ji1";
const jwtToken =
  "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
const rsaBody = Array.from({ length: 6 }, (_, i) => "MIIEowIBAAKCAQEA" + "x7Jq0Vb1Zk" + i + "Lm9PqRsTuVwXyZaBcDeFgHiJkLmNoPqRsTuVwXyZ01234567").join("\n");
const pem = `-----BEGIN RSA PRIVATE KEY-----\n${rsaBody}\n-----END RSA PRIVATE KEY-----`;
const ecPem = `-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBkg4LVWM9nuwNSk3yByxZpYRTBnVJk5nGE0lJPBqXDBoAoGCCqGSM49\nAwEHoUQDQgAEz8p7Q2bGc0kqPvWxYzAbCdEfGhIjKlMnOpQrStUvWxYzAbCdEfGh\n-----END EC PRIVATE KEY-----`;
const opensshPem = `-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\nQyNTUxOQAAACDdZ7kQ1b4n2mHf0p8sWvXyZ9aBcDeFgHiJkLmNoPqRsAAAAJg1c2f1NXNn\n-----END OPENSSH PRIVATE KEY-----`;
const anthropicReadme = "sk-ant-api03-R2D2C3P0BEEP_BOOP_BUZZ_WHIRR_CLICK_SPIN_TURN_JUMP_SKIP_HOP_DANCE_SING_PLAY_WORK_LEARN_GROW_LOVE_LIVEigAA";
const pngBase64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkAKIAAEOKIAIAKIAAKIAAAKIAGhpVqAAAAAElFTkSuQmCCAKIAIOSFODNN7EXAMPLEghp" + "A".repeat(300) + "xoxbAKIAQWERTYUIOPASDFGH1234ghp_abcdefghijklmnopqrstuvwxyz0123456789" + "B".repeat(200);

export const positives: CorpusSource[] = [
  // --- AWS
  { source: "ini", text: "[default]\naws_access_key_id = ⟦aws_access_key:AKIAIOSFODNN7EXAMPLE⟧\naws_secret_access_key = ⟦aws_secret_key:wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY⟧\nregion = eu-west-1", note: "AWS documentation example, masked by decision" },
  { source: "env", text: "export AWS_ACCESS_KEY_ID=⟦aws_access_key:AKIA2OGYBAH6STMMNXNN⟧\nexport AWS_SECRET_ACCESS_KEY=⟦aws_secret_key:Qx7b1y0hT3ZrJk9PvLmN2sW8cD4eF6gH5iJ0kL1m⟧" },
  { source: "log", text: "2024-05-01T10:22:13.412Z WARN sts: assumed role, temporary key ⟦aws_access_key:ASIAY34FZKBOKMUTVV7A⟧ expires in 3600s" },
  { source: "json", text: '{"AccessKeyId": "⟦aws_access_key:AKIAJ7QWERTYUIOP2345⟧", "SecretAccessKey": "⟦aws_secret_key:9drTJvcXLB89EXAMPLELB8923FB892xMFI/ghOeR⟧", "Status": "Active"}' },
  { source: "stacktrace", text: "botocore.exceptions.ClientError: An error occurred (InvalidClientTokenId) when calling GetCallerIdentity: The security token included in the request is invalid. key=⟦aws_access_key:AKIAZ5XKQ2PL7RNMWB3C⟧" },
  // --- GitHub
  { source: "shell", text: `git clone https://x-access-token:⟦github_token:${ghs}⟧@github.com/acme/infra.git` },
  { source: "env", text: `GITHUB_TOKEN=⟦github_token:${ghp}⟧` },
  { source: "log", text: `oauth exchange ok, token=⟦github_token:${gho}⟧ scope=repo` },
  { source: "json", text: `{"token": "⟦github_token:${ghu}⟧", "expires_in": 28800, "refresh_token": "⟦github_token:${ghr}⟧"}` },
  { source: "yaml", text: `github:\n  pat: ⟦github_token:${pat}⟧\n  org: acme` },
  { source: "log", text: "using fine-grained token ⟦github_token:github_pat_11AAAAAAA0aBcDeFgHiJkL_mNoPqRsTuVwXyZ0123456789aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789abcdef⟧ for acme/infra" },
  // --- GitLab
  { source: "shell", text: 'curl --header "PRIVATE-TOKEN: ⟦gitlab_token:glpat-xY7zK9mQ2rT5vW8bN1cD⟧" "https://gitlab.example.com/api/v4/projects"' },
  { source: "env", text: "CI_JOB_TOKEN_OVERRIDE=⟦gitlab_token:glpat-Ab3dEf6hIj9kLm2nOp5q⟧" },
  // --- Slack
  { source: "env", text: "SLACK_BOT_TOKEN=⟦slack_token:xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx⟧\nSLACK_APP_TOKEN=⟦slack_token:xapp-1-A0123456789-1234567890123-abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789⟧" },
  { source: "log", text: "posting alert via ⟦slack_webhook:https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX⟧ failed: 404" },
  { source: "json", text: '{"user_token": "⟦slack_token:xoxp-2222222222-3333333333-4444444444-5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f⟧", "team": "T024BE7LD"}' },
  // --- Stripe
  { source: "code", text: "const stripe = new Stripe('⟦stripe_key:sk_live_4eC39HqLyjWDarjtT1zdp7dc⟧', { apiVersion: '2024-06-20' });" },
  { source: "env", text: "STRIPE_RESTRICTED=⟦stripe_key:rk_live_51H8a2bCdEfGhIjKlMnOpQrStUvWx⟧\nSTRIPE_TEST_KEY=⟦stripe_key:sk_test_26PHem9AhJZvU623DfE1x4sd⟧" },
  { source: "log", text: "stripe error: Invalid API Key provided: ⟦stripe_key:sk_test_51MqLkZ2eZvKYlo2C0123456789abcdef⟧" },
  // --- Google
  { source: "html", text: '<script src="https://maps.googleapis.com/maps/api/js?key=⟦google_api_key:AIzaSyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe⟧&callback=initMap"></script>' },
  { source: "json", text: '{"firebase": {"apiKey": "⟦google_api_key:AIzaSyC93b7LmQ2vR8xT4nP1kJ6hG9fD3sA0wEz⟧", "projectId": "acme-prod"}}' },
  // --- OpenAI / Anthropic
  { source: "env", text: "OPENAI_API_KEY=⟦openai_key:sk-proj-Ab12Cd34Ef56Gh78Ij90Kl12Mn34Op56Qr78St90Uv12Wx34Yz56Ab78Cd90Ef12Gh34Ij56Kl78Mn90Op12Qr34St56Uv78Wx90Yz12⟧" },
  { source: "log", text: "openai.AuthenticationError: Incorrect API key provided: ⟦openai_key:sk-9a8B7c6D5e4F3g2H1i0JT3BlbkFJk1L2m3N4o5P6q7R8s9⟧." },
  { source: "env", text: `ANTHROPIC_API_KEY=⟦anthropic_key:${anthropicReadme}⟧`, note: "secretlint README (anthropic rule)" },
  { source: "code", text: 'client = anthropic.Anthropic(api_key="⟦anthropic_key:sk-ant-api03-xY9zW8vU7tS6rQ5pO4nM3lK2jI1hG0fE9dC8bA7zY6xW5vU4tS3rQ2pO1nM0lK9jI8hG7fE6dC5bA4-zY3xW2AA⟧")' },
  // --- npm
  { source: "npmrc", text: "//registry.npmjs.org/:_authToken=⟦npm_token:npm_1a2B3c4D5e6F7g8H9i0JkLmNoPqRsTuVwXyZ⟧" },
  { source: "log", text: "npm ERR! code E401 token ⟦npm_token:npm_ZyXwVuTsRqPoNmLkJiHgFeDcBa9876543210⟧ is revoked" },
  // --- private keys
  { source: "file", text: `Contents of deploy/id_rsa:\n⟦private_key:${pem}⟧\n` },
  { source: "json", text: `{"type": "service_account", "private_key": "⟦private_key:${ecPem.replace(/\n/g, "\\n")}⟧", "client_email": "⟦email:deployer@acme-prod.iam.gserviceaccount.com⟧"}` },
  { source: "file", text: `$ cat ~/.ssh/id_ed25519\n⟦private_key:${opensshPem}⟧` },
  { source: "log", text: "tool output cut at 200 chars: ⟦private_key:-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\nMzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvu⟧ ...[truncated]", note: "a key block cut off before its END line" },
  // --- JWT
  { source: "shell", text: `curl -s -H "Authorization: Bearer ⟦jwt:${jwtToken}⟧" https://api.acme.dev/v1/me` },
  { source: "log", text: `auth: rejected token ⟦jwt:${jwtToken}⟧ (expired)` },
  { source: "json", text: `{"id_token": "⟦jwt:${jwtToken}⟧", "token_type": "Bearer", "expires_in": 3600}` },
  { source: "shell", text: 'curl -H "Authorization: Bearer ⟦bearer_token:2YotnFZFEjr1zCsicMWpAA8f3d9c⟧" https://api.example.net/resource' },
  // --- URL passwords
  { source: "env", text: "DATABASE_URL=postgresql://app:⟦url_password:Xk29!fpQz7⟧@db.internal:5432/orders?sslmode=require" },
  { source: "log", text: "redis: connecting to redis://:⟦url_password:r3d1sPa55w0rd⟧@cache-1.prod:6379/0" },
  { source: "yaml", text: "broker_url: amqp://worker:⟦url_password:Rabb1tMQ-s3cret⟧@mq.acme.local:5672/prod" },
  { source: "stacktrace", text: "pymongo.errors.ServerSelectionTimeoutError: mongodb+srv://admin:⟦url_password:M0ng0Adm1n2024⟧@cluster0.ab12c.mongodb.net/test timed out" },
  { source: "shell", text: "pip install --index-url https://deploy:⟦url_password:pyp1-t0ken-9f8e⟧@pypi.acme.dev/simple acme-core" },
  // --- assignments
  { source: "env", text: "DB_HOST=db.internal\nDB_USER=orders\nDB_PASSWORD=⟦secret_assignment:correct-horse-battery⟧\nDB_PORT=5432" },
  { source: "yaml", text: "smtp:\n  host: smtp.acme.dev\n  username: mailer\n  password: ⟦secret_assignment:Tr0ub4dor&3x⟧\n  port: 587" },
  { source: "json", text: '{"username": "svc-backup", "password": "⟦secret_assignment:p@55w0rd!2024⟧", "enabled": true}' },
  { source: "config", text: "Server=tcp:sql01.acme.local,1433;Database=crm;User Id=crm_app;Password=⟦secret_assignment:S3cure#Pass99⟧;Encrypt=True" },
  { source: "log", text: "DEBUG config loaded: api_key=⟦secret_assignment:a94a8fe5ccb19ba61c4c0873d391e987⟧ timeout=30" },
  { source: "python", text: "CLIENT_SECRET = '⟦secret_assignment:9fZq-2Lp_Xw8Rt7Ys6Vb5Nm4⟧'" },
  { source: "yaml", text: "oauth:\n  client_id: web-portal\n  client_secret: ⟦secret_assignment:kq8Z1xY7wV6uT5sR4qP3⟧" },
  { source: "properties", text: "spring.datasource.password=⟦secret_assignment:spr1ngS3cret⟧\nspring.datasource.username=app" },
  { source: "env", text: "SECRET_KEY_BASE=⟦secret_assignment:5f2b9c1e8d7a6f3e4b2c1d0a9f8e7d6c5b4a3f2e1d0c9b8a⟧" },
  // --- e-mail
  { source: "log", text: "2024-03-02 14:01:07 INFO user ⟦email:jane.doe@example.com⟧ logged in from web" },
  { source: "json", text: '[{"id": 1, "name": "Jane Doe", "email": "⟦email:jane.doe+billing@acme-corp.co.uk⟧"}, {"id": 2, "name": "Bo Li", "email": "⟦email:bo.li@mail.example.org⟧"}]' },
  { source: "email", text: "From: Support <⟦email:support@help.example.io⟧>\nTo: ⟦email:r.kumar@customer-domain.in⟧\nSubject: Ticket #48213" },
  { source: "csv", text: "id,name,email,plan\n1001,Ana Ruiz,⟦email:ana.ruiz@correo.example.es⟧,pro\n1002,Tom Berg,⟦email:tom_berg@example.se⟧,free" },
  // --- phone
  { source: "json", text: '{"name": "Alice", "phone": "⟦phone:+1 415-555-0132⟧", "country": "US"}' },
  { source: "text", text: "Call me at ⟦phone:(415) 555-0198⟧ or on my mobile ⟦phone:+44 7700 900123⟧." },
  { source: "csv", text: "name,tel\nMüller,⟦phone:+49 30 12345678⟧\nDupont,⟦phone:+33 1 42 68 53 00⟧" },
  { source: "text", text: "Tel: ⟦phone:020 7946 0958⟧ (office hours 9-17)" },
  { source: "log", text: "sms sent to ⟦phone:+14155550132⟧ status=delivered" },
  { source: "text", text: "Support line ⟦phone:212-555-0147⟧, fax ⟦phone:212.555.0148⟧" },
  // --- cards
  { source: "json", text: '{"order": 48213, "card": "⟦credit_card:4111 1111 1111 1111⟧", "exp": "12/27"}' },
  { source: "log", text: "payment declined for card ⟦credit_card:5555555555554444⟧ (insufficient funds)" },
  { source: "text", text: "Amex ⟦credit_card:3782-822463-10005⟧ on file; backup ⟦credit_card:6011 1111 1111 1117⟧" },
  { source: "csv", text: "customer,pan\n77,⟦credit_card:4012888888881881⟧\n78,⟦credit_card:5105105105105100⟧\n79,⟦credit_card:3530111333300000⟧" },
  // --- IBAN
  { source: "text", text: "Please transfer to IBAN ⟦iban:DE89 3704 0044 0532 0130 00⟧ (Commerzbank)." },
  { source: "json", text: '{"payee": "ACME Ltd", "iban": "⟦iban:GB82WEST12345698765432⟧", "bic": "WESTGB2L"}' },
  { source: "csv", text: "supplier;iban\nLe Coq;⟦iban:FR14 2004 1010 0505 0001 3M02 606⟧\nVan Dam;⟦iban:NL91ABNA0417164300⟧\nRossi;⟦iban:IT60X0542811101000000123456⟧" },
  { source: "text", text: "Kontoverbindung: ⟦iban:CH93 0076 2011 6238 5295 7⟧, ⟦iban:ES9121000418450200051332⟧, ⟦iban:BE68539007547034⟧" },
  // --- SSN
  { source: "json", text: '{"employee": "R. Patel", "ssn": "⟦ssn:123-45-6789⟧", "dept": "ops"}' },
  { source: "text", text: "Applicant SSN: ⟦ssn:078-05-1121⟧, DOB 1985-04-12" },
  { source: "csv", text: "name,ssn\nLee,⟦ssn:219-09-9999⟧\nKim,⟦ssn:457-55-5462⟧" },
  { source: "text", text: "social security number ⟦ssn:536 22 8726⟧ on the W-2" },
  // --- IP
  { source: "log", text: '⟦ip_address:203.0.113.42⟧ - - [10/Oct/2023:13:55:36 +0000] "GET /index.html HTTP/1.1" 200 2326' },
  { source: "log", text: "connect ECONNREFUSED ⟦ip_address:10.0.12.7⟧:5432" },
  { source: "json", text: '{"client_ip": "⟦ip_address:198.51.100.23⟧", "forwarded_for": "⟦ip_address:192.168.1.15⟧"}' },
  { source: "text", text: "host up at http://⟦ip_address:172.16.254.1⟧/status, peer ⟦ip_address:2001:db8:85a3::8a2e:370:7334⟧" },
  { source: "log", text: "sshd[2211]: Failed password for root from ⟦ip_address:fe80::1ff:fe23:4567:890a⟧ port 22 ssh2" },
  { source: "config", text: "listen 0.0.0.0:8080; upstream backend { server ⟦ip_address:10.2.3.4⟧:9000; server ⟦ip_address:10.2.3.5⟧:9000; }" },
  // --- Leak classes: secrets that only show once decoded (base64, hex, percent-encoding). The span
  // is the whole encoded run, typed by what it decodes to. Encodings computed here, from the
  // provider formats above, so the corpus stays readable.
  { source: "k8s-secret", text: `data:\n  GITHUB_TOKEN: ⟦github_token:${Buffer.from(ghp).toString("base64")}⟧\n  region: ZXUtd2VzdC0x` },
  { source: "k8s-secret", text: `apiVersion: v1\nkind: Secret\ndata:\n  token: ⟦slack_token:${Buffer.from("xoxb-" + "263594206564-2343594206574-FGqddMF8t08v8N7Oq4i57vs1").toString("base64")}⟧` },
  { source: "log", text: `DEBUG payload hex=⟦github_token:${Buffer.from(gho).toString("hex")}⟧ len=40` },
  { source: "url", text: `https://crm.example-corp.com/search?owner=⟦email:${encodeURIComponent("maria.lopez@example-corp.com")}⟧&page=2` },
  { source: "url", text: `redirect_uri=⟦email:${encodeURIComponent("https://app.example/cb?u=ops.team@acme-corp.com")}⟧` },
  { source: "docker", text: `{"auths": {"registry.acme.dev": {"auth": "⟦secret_assignment:${Buffer.from("deploy:password=Tr0ub4dor-and-3").toString("base64")}⟧"}}}`, note: "a base64 user:password pair decodes to an assignment" },
];

export const negatives: CorpusSource[] = [
  { source: "git", text: "commit 9fceb02d0ae598e95dc970b74767f19372d61af8\nAuthor: CI Bot\n\n    Merge pull request #4821 from feature/retry" },
  { source: "git", text: "HEAD is now at 3f786850e387550fdab836ed7e6dc881de23001b fix: retry on 503" },
  { source: "uuid", text: '{"request_id": "f47ac10b-58cc-4372-a567-0e02b2c3d479", "trace": "4bf92f3577b34da6a3ce929d0e0e4736"}' },
  { source: "hash", text: "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855  node-v20.20.2-linux-x64.tar.xz" },
  { source: "hash", text: "integrity sha512-Q3ePhk3uV9yFf3TxQ5p9Hk6V1iX2d8nX3rj3D0VdRzC+1mF3b0mP4cWmQpKqR2sJZk5Q9rP7o1X8Y2u3V4w5Xg==" },
  { source: "image", text: `data:image/png;base64,${pngBase64}` },
  { source: "image", text: `{"type": "image", "mimeType": "image/png", "data": "${pngBase64}"}` },
  { source: "versions", text: "node v20.20.2, npm 11.19.1, openssl 3.0.13, kernel 6.1.0-18-amd64" },
  { source: "versions", text: "Upgraded nginx/1.22.1.4 and libfoo 2.4.1.3 (version 4.1.2.10, build 10.0.19045.3693)" },
  { source: "versions", text: '{"name": "acme-cli", "version": "1.2.3.4", "dependencies": {"left-pad": "^1.3.0", "lodash": "4.17.21"}}' },
  { source: "versions", text: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0.6099.109 Safari/537.36" },
  { source: "versions", text: "pip install requests==2.31.0 urllib3==2.0.7 && dotnet --version 8.0.100.1 && pkg@3.2.1.0 installed" },
  { source: "dates", text: "created_at=2024-01-15T09:30:00Z updated=2024-02-29 12:00:00 window 2023-12-31..2024-01-01" },
  { source: "dates", text: "Report for 01/02/2024 - 31/03/2024, generated 2024-04-01 08:15:42.123 +02:00" },
  { source: "orders", text: "Order #100234556 shipped, tracking 1Z999AA10123456784, invoice INV-2024-000123, amount 1,234.56 EUR" },
  { source: "orders", text: '{"order_id": 4000123412341234, "sku": "ABC-12345-XL", "qty": 3, "price_cents": 129900}' },
  { source: "isbn", text: "ISBN 978-3-16-148410-0, ISBN-10 0-306-40615-2, ISSN 2049-3630" },
  { source: "numbers", text: "Processed 1234567890 events in 987654 ms; p99 123.456 ms; ids 555123456, 123456789012" },
  { source: "numbers", text: "timestamp 1700000000123, epoch_ns 1700000000123456789, pid 48213, port 54321" },
  { source: "code", text: "const password = process.env.DB_PASSWORD; // read from env\nif (!password) throw new Error('password required');" },
  { source: "code", text: "password: ${DB_PASSWORD}\napi_key: {{ .Values.apiKey }}\nsecret: <your-secret-here>\ntoken: null" },
  { source: "code", text: "max_tokens=1024 token_count: 512 tokenizer: cl100k_base secretName: db-creds password_hint: 'favourite pet'" },
  { source: "code", text: "std::vector<int> v; auto x = a::b::c; arr[::2]; time 12:30:45; mac 00:1a:2b:3c:4d:5e" },
  { source: "text", text: "Use your e-mail address as the login. Contact us via the form at example.com/contact. @channel please review." },
  { source: "text", text: "Assets: icon@2x.png, logo@3x.webp; npm i @types/node @scope/pkg@1.2.3" },
  { source: "text", text: "Room 101-555-0199 is on floor 3; part no. 123-456-7890-B; ticket 000-12-3456" },
  { source: "text", text: "Invalid SSN-like ids: 000-12-3456, 666-45-6789, 900-12-3456, 123-00-4567, 123-45-0000" },
  { source: "text", text: "Credit limit 4111111111111112, card ending 1111, ref 1234 5678 9012 3456" },
  { source: "text", text: "Account DE00 1234 5678 9012 3456 78 is invalid, GB00WEST12345698765432 too" },
  { source: "text", text: "Skip to main content. The skeleton-loader and task-runner packages are documented in sk-learn style guides." },
  { source: "csv", text: "date,open,high,low,close\n2024-01-02,187.15,188.44,183.89,185.64\n2024-01-03,184.22,185.88,183.43,184.25" },
  { source: "log", text: "GET /api/v1/items?page=2&limit=50 200 12.3ms bytes=48213 user_agent=curl/8.5.0" },
  { source: "json", text: '{"token_type": "Bearer", "expires_in": 3600, "scope": "read write", "authorization": "required"}' },
  { source: "text", text: "Coordinates 51.5074, -0.1278; temperature 21.5C; ratio 3.14159; phone extension x204" },
  { source: "k8s", text: "image: registry.acme.dev/api:1.14.2\nenv:\n  - name: DB_PASSWORD\n    valueFrom:\n      secretKeyRef:\n        name: db\n        key: password" },
  { source: "docs", text: "Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, then run aws sts get-caller-identity. See docs for sk_live_ keys." },
  // --- Hard negatives for the encoded and protocol-shaped cases
  { source: "git", text: "remote: git@github.com:acme-corp/infra.git (fetch)\nssh://git@gitlab.example-corp.com:2222/team/app.git" },
  { source: "net", text: "listening on 127.0.0.1:8080 and [::1]:8443; health http://localhost:9090/healthz" },
  { source: "hash", text: "md5 9e107d9d372bb6826bd81d3542a419d6 sha1 2fd4e1c67a2d28fced849ee1bb76e7391b93eb12 blake2 786a02f742015903c6c6fd852552d272912f4740e15847618a86e217f71f5419" },
  { source: "base64", text: "etag W/\"MTIzNDU2Nzg5MGFiY2RlZg\" nonce r8Jk2LmQ9xZ0vB3n cursor eyJvZmZzZXQiOjEwMH0=" },
  { source: "base64", text: '{"nextCursor": "eyJwYWdlIjoyLCJzb3J0IjoiY3JlYXRlZF9hdCJ9", "progressToken": "tok-7f3a-9c21"}' },
  { source: "url", text: "https://docs.example.com/search?q=rate%20limit%20errors&lang=en-GB&sort=relevance" },
  { source: "ids", text: "trace 4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7 ulid 01ARZ3NDEKTSV4RRFFQ69G5FAV ksuid 0ujtsYcgvSTl8PAuAdqWYSMnLOv" },
];
