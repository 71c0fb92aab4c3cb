// SPDX-License-Identifier: Apache-2.0
// Feeds the request envelopes Intel's @device-management-toolkit/wsman-messages generates
// to a running amtsim device (HTTPS + Digest) and checks every answer: a SOAP envelope whose
// Action is the expected response action and, for methods, the expected ReturnValue. Drives a
// whole second stage: key generation, CSR signing, certificate install, TLS switch-over.
// Usage: node wsman_messages_conformance.js HOST PORT USER PASSWORD DEVICE_CERT.pem WORKDIR
'use strict';
const https = require('https');
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');
const { AMT, CIM, IPS } = require('@device-management-toolkit/wsman-messages');

const [host, port, user, password, caFile, work] = process.argv.slice(2);
const amt = new AMT.Messages(), cim = new CIM.Messages(), ips = new IPS.Messages();
const AMTU = 'http://intel.com/wbem/wscim/1/amt-schema/1/';
const CIMU = 'http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/';
const IPSU = 'http://intel.com/wbem/wscim/1/ips-schema/1/';
const WXF = 'http://schemas.xmlsoap.org/ws/2004/09/transfer/';
const WSEN = 'http://schemas.xmlsoap.org/ws/2004/09/enumeration/';
let ca = fs.readFileSync(caFile);
let agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca });
let challenge = null, nc = 0, passed = 0, failed = 0;

function md5(s) { return crypto.createHash('md5').update(s).digest('hex'); }
function authHeader() {
  if (!challenge) return undefined;
  nc++;
  const cnonce = crypto.randomBytes(8).toString('hex'), ncs = ('0000000' + nc.toString(16)).slice(-8);
  const ha1 = md5(`${user}:${challenge.realm}:${password}`), ha2 = md5('POST:/wsman');
  const resp = md5(`${ha1}:${challenge.nonce}:${ncs}:${cnonce}:auth:${ha2}`);
  return `Digest username="${user}",realm="${challenge.realm}",nonce="${challenge.nonce}",uri="/wsman",qop=auth,response="${resp}",nc=${ncs},cnonce="${cnonce}"`;
}
function post1(body) {
  return new Promise((resolve, reject) => {
    const headers = { 'Content-Type': 'application/soap+xml;charset=UTF-8', 'Content-Length': Buffer.byteLength(body) };
    const a = authHeader();
    if (a) headers.Authorization = a;
    const t0 = Date.now();
    const req = https.request({ host, port, path: '/wsman', method: 'POST', agent, headers, servername: undefined }, (res) => {
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { data += c; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: data, ms: Date.now() - t0, socket: res.socket }));
    });
    req.on('error', reject);
    req.end(body);
  });
}
async function post(body) {
  for (let i = 0; i < 3; i++) {
    const r = await post1(body);
    if (r.status !== 401) return r;
    const h = r.headers['www-authenticate'] || '';
    const realm = /realm="([^"]*)"/.exec(h), nonce = /nonce="([^"]*)"/.exec(h);
    if (!realm || !nonce) return r;
    challenge = { realm: realm[1], nonce: nonce[1] };
    nc = 0;
  }
  throw new Error('authentication failed three times');
}
function tag(body, name) {
  const m = new RegExp(`<(?:[A-Za-z0-9]+:)?${name}(?:\\s[^>]*)?>([\\s\\S]*?)</(?:[A-Za-z0-9]+:)?${name}>`).exec(body);
  return m ? m[1] : null;
}
function ok(name, cond, detail) {
  if (cond) { passed++; console.log(`ok - ${name}`); } else { failed++; console.log(`FAIL - ${name}${detail ? ': ' + detail : ''}`); }
  return cond;
}
// call NAME XML ACTION [RV]: posts, checks a non-fault 200 envelope with Action ACTION and,
// when RV is given, that ReturnValue.
async function call(name, xml, action, rv) {
  let r;
  try { r = await post(xml); } catch (e) { ok(name, false, e.message); return null; }
  const act = tag(r.body, 'Action');
  let good = r.status === 200 && r.body.includes('Envelope') && !r.body.includes(':Fault>') && act === action;
  let why = `HTTP ${r.status}, Action ${act}`;
  if (good && rv !== undefined) {
    const got = tag(r.body, 'ReturnValue');
    good = got === String(rv);
    why = `ReturnValue ${got}, want ${rv}`;
  }
  ok(name, good, good ? '' : why + '\n' + r.body.slice(0, 600));
  return r;
}
// A documented fault: HTTP status and subcode.
async function callFault(name, xml, status, subcode) {
  const r = await post(xml);
  const sub = tag(r.body, 'Subcode');
  ok(name, r.status === status && sub && sub.includes(subcode), `HTTP ${r.status} ${sub}`);
  return r;
}
async function enumPull(label, cls, uri) {
  const e = await call(`${label}.Enumerate`, cls.Enumerate(), WSEN + 'EnumerateResponse');
  if (!e) return '';
  const ctx = tag(e.body, 'EnumerationContext');
  let items = '';
  let c = ctx;
  for (let i = 0; c && i < 50; i++) {
    const p = await call(`${label}.Pull${i ? ' #' + (i + 1) : ''}`, cls.Pull(c), WSEN + 'PullResponse');
    if (!p) break;
    items += tag(p.body, 'Items') || '';
    if (p.body.includes('EndOfSequence')) break;
    c = tag(p.body, 'EnumerationContext');
  }
  return items;
}
const b64md5 = (u, realm, pw) => crypto.createHash('md5').update(`${u}:${realm}:${pw}`).digest('base64');
const allIds = (xml, prefix) => [...xml.matchAll(new RegExp(`(${prefix}\\d+)`, 'g'))].map((m) => m[1]);

// DER helpers for the null-signed PKCS#10 the client builds around AMT's public key.
function der(tagByte, content) {
  const n = content.length;
  let len;
  if (n < 128) len = Buffer.from([n]);
  else if (n < 256) len = Buffer.from([0x81, n]);
  else len = Buffer.from([0x82, n >> 8, n & 255]);
  return Buffer.concat([Buffer.from([tagByte]), len, content]);
}
const seq = (...p) => der(0x30, Buffer.concat(p));
function nullSignedCsr(pkcs1PubB64, cn) {
  const spki = crypto.createPublicKey({ key: Buffer.from(pkcs1PubB64, 'base64'), format: 'der', type: 'pkcs1' })
    .export({ type: 'spki', format: 'der' });
  const oidCN = Buffer.from([0x06, 0x03, 0x55, 0x04, 0x03]);
  const name = seq(der(0x31, seq(oidCN, der(0x0c, Buffer.from(cn)))));
  const info = seq(der(0x02, Buffer.from([0])), name, spki, der(0xa0, Buffer.alloc(0)));
  const alg = seq(Buffer.from([0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b]), Buffer.from([0x05, 0x00]));
  return seq(info, alg, der(0x03, Buffer.concat([Buffer.from([0]), Buffer.alloc(256)]))).toString('base64');
}
function peerFingerprint() {
  return new Promise((resolve, reject) => {
    const tls = require('tls');
    const s = tls.connect({ host, port: Number(port), rejectUnauthorized: false }, () => {
      const c = s.getPeerCertificate(true);
      const chain = [];
      for (let x = c; x && !chain.includes(x.fingerprint256); x = x.issuerCertificate) chain.push(x.fingerprint256);
      s.end();
      resolve(chain);
    });
    s.on('error', reject);
  });
}
const fp = (pemFile) => new crypto.X509Certificate(fs.readFileSync(pemFile)).fingerprint256;

async function main() {
  const gs = await call('AMT_GeneralSettings.Get', amt.GeneralSettings.Get(), WXF + 'GetResponse');
  const realm = tag(gs.body, 'DigestRealm');
  await enumPull('AMT_GeneralSettings', amt.GeneralSettings);
  await call('AMT_GeneralSettings.Put', amt.GeneralSettings.Put({ HostName: 'pc7', DomainName: 'contoso.com' }), WXF + 'PutResponse');
  await enumPull('CIM_SoftwareIdentity', cim.SoftwareIdentity);
  await call('AMT_SetupAndConfigurationService.Get', amt.SetupAndConfigurationService.Get(), WXF + 'GetResponse');
  await enumPull('AMT_SetupAndConfigurationService', amt.SetupAndConfigurationService);
  await call('AMT_SetupAndConfigurationService.GetUuid', amt.SetupAndConfigurationService.GetUuid(), AMTU + 'AMT_SetupAndConfigurationService/GetUuidResponse', 0);
  await call('AMT_SetupAndConfigurationService.SetMEBXPassword', amt.SetupAndConfigurationService.SetMEBXPassword('P@ssw0rd7'), AMTU + 'AMT_SetupAndConfigurationService/SetMEBxPasswordResponse', 0);
  await call('SetMEBXPassword again once changed: 16 NOT_PERMITTED', amt.SetupAndConfigurationService.SetMEBXPassword('P@ssw0rd8'), AMTU + 'AMT_SetupAndConfigurationService/SetMEBxPasswordResponse', 16);

  await call('AMT_AuthorizationService.Get', amt.AuthorizationService.Get(), WXF + 'GetResponse');
  await call('AMT_AuthorizationService.SetAdminACLEntryEx', amt.AuthorizationService.SetAdminACLEntryEx(user, b64md5(user, realm, password)), AMTU + 'AMT_AuthorizationService/SetAdminAclEntryExResponse', 0);
  await call('AMT_AuthorizationService.GetAdminAclEntry', amt.AuthorizationService.GetAdminAclEntry(), AMTU + 'AMT_AuthorizationService/GetAdminAclEntryResponse', 0);
  const add = await call('AMT_AuthorizationService.AddUserAclEntryEx', amt.AuthorizationService.AddUserAclEntryEx(2, [3, 5], 'operator1', b64md5('operator1', realm, 'Op3rator!')), AMTU + 'AMT_AuthorizationService/AddUserAclEntryExResponse', 0);
  await call('AddUserAclEntryEx duplicate: 2058', amt.AuthorizationService.AddUserAclEntryEx(2, [3], 'operator1', b64md5('operator1', realm, 'x')), AMTU + 'AMT_AuthorizationService/AddUserAclEntryExResponse', 2058);
  const en = await call('AMT_AuthorizationService.EnumerateUserAclEntries', amt.AuthorizationService.EnumerateUserAclEntries(1), AMTU + 'AMT_AuthorizationService/EnumerateUserAclEntriesResponse', 0);
  const handle = add && tag(add.body, 'Handle');
  ok('enumerated handles include the new user', en && handle && en.body.includes(`>${handle}<`));
  await call('AMT_AuthorizationService.RemoveUserAclEntry', amt.AuthorizationService.RemoveUserAclEntry(Number(handle)), AMTU + 'AMT_AuthorizationService/RemoveUserAclEntryResponse', 0);
  await call('RemoveUserAclEntry unknown handle: 2053', amt.AuthorizationService.RemoveUserAclEntry(999), AMTU + 'AMT_AuthorizationService/RemoveUserAclEntryResponse', 2053);

  await call('AMT_TimeSynchronizationService.Get', amt.TimeSynchronizationService.Get(), WXF + 'GetResponse');
  const lt = await call('AMT_TimeSynchronizationService.GetLowAccuracyTimeSynch', amt.TimeSynchronizationService.GetLowAccuracyTimeSynch(), AMTU + 'AMT_TimeSynchronizationService/GetLowAccuracyTimeSynchResponse', 0);
  const ta0 = Number(tag(lt.body, 'Ta0'));
  const now = Math.floor(Date.now() / 1000);
  await call('AMT_TimeSynchronizationService.SetHighAccuracyTimeSynch', amt.TimeSynchronizationService.SetHighAccuracyTimeSynch(ta0, now, now), AMTU + 'AMT_TimeSynchronizationService/SetHighAccuracyTimeSynchResponse', 0);

  // ---- certificate store, CSR, TLS -------------------------------------------------------------
  await call('AMT_PublicKeyManagementService.Get', amt.PublicKeyManagementService.Get(), WXF + 'GetResponse');
  const t0 = Date.now();
  const gk = await call('AMT_PublicKeyManagementService.GenerateKeyPair', amt.PublicKeyManagementService.GenerateKeyPair({ KeyAlgorithm: 0, KeyLength: 2048 }), AMTU + 'AMT_PublicKeyManagementService/GenerateKeyPairResponse', 0);
  ok('GenerateKeyPair takes the modelled latency', Date.now() - t0 >= Number(process.env.KEYGEN_MS || 0), `${Date.now() - t0} ms`);
  const keyId = allIds(gk.body, 'Intel\\(r\\) AMT Key: Handle: ')[0];
  ok('GenerateKeyPair returns a KeyPair reference', !!keyId);
  await call('GenerateKeyPair with an unsupported length: 2062', amt.PublicKeyManagementService.GenerateKeyPair({ KeyAlgorithm: 0, KeyLength: 1000 }), AMTU + 'AMT_PublicKeyManagementService/GenerateKeyPairResponse', 2062);
  const keys = await enumPull('AMT_PublicPrivateKeyPair', amt.PublicPrivateKeyPair);
  const derKey = tag(keys, 'DERKey');
  ok('key pair enumerates with its public DERKey', !!derKey && keys.includes(keyId));
  await call('AMT_PublicPrivateKeyPair.Get', amt.PublicPrivateKeyPair.Get({ name: 'InstanceID', value: keyId }), WXF + 'GetResponse');
  const keyRef = `<a:Address>/wsman</a:Address><a:ReferenceParameters><w:ResourceURI>${AMTU}AMT_PublicPrivateKeyPair</w:ResourceURI><w:SelectorSet><w:Selector Name="InstanceID">${keyId}</w:Selector></w:SelectorSet></a:ReferenceParameters>`;
  const csrReq = await call('AMT_PublicKeyManagementService.GeneratePKCS10RequestEx', amt.PublicKeyManagementService.GeneratePKCS10RequestEx({ KeyPair: keyRef, SigningAlgorithm: 1, NullSignedCertificateRequest: nullSignedCsr(derKey, `${host}`) }), AMTU + 'AMT_PublicKeyManagementService/GeneratePKCS10RequestExResponse', 0);
  const signed = tag(csrReq.body, 'SignedCertificateRequest');
  fs.writeFileSync(path.join(work, 'amt.csr.der'), Buffer.from(signed || '', 'base64'));
  let verified = false;
  try {
    execFileSync('openssl', ['req', '-inform', 'DER', '-in', path.join(work, 'amt.csr.der'), '-verify', '-noout'], { stdio: 'pipe' });
    verified = true;
  } catch (e) { /* reported below */ }
  ok('the signed CSR verifies with the AMT key (openssl req -verify)', verified);
  // The test CA issues the web-server certificate for the AMT key from that CSR.
  execFileSync('openssl', ['req', '-inform', 'DER', '-in', path.join(work, 'amt.csr.der'), '-out', path.join(work, 'amt.csr.pem')]);
  fs.writeFileSync(path.join(work, 'leaf.ext'), `subjectAltName=IP:${host}\nextendedKeyUsage=serverAuth,clientAuth\n`);
  execFileSync('openssl', ['x509', '-req', '-in', path.join(work, 'amt.csr.pem'), '-CA', path.join(work, 'ca.pem'), '-CAkey', path.join(work, 'ca.key'), '-CAcreateserial', '-days', '2', '-sha256', '-extfile', path.join(work, 'leaf.ext'), '-out', path.join(work, 'leaf.pem')], { stdio: 'pipe' });
  const pemB64 = (f) => fs.readFileSync(path.join(work, f), 'utf8').replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
  const root = await call('AMT_PublicKeyManagementService.AddTrustedRootCertificate', amt.PublicKeyManagementService.AddTrustedRootCertificate({ CertificateBlob: pemB64('ca.pem') }), AMTU + 'AMT_PublicKeyManagementService/AddTrustedRootCertificateResponse', 0);
  const rootId = allIds(root.body, 'Intel\\(r\\) AMT Certificate: Handle: ')[0];
  await call('AddTrustedRootCertificate again: 2058 DUPLICATE', amt.PublicKeyManagementService.AddTrustedRootCertificate({ CertificateBlob: pemB64('ca.pem') }), AMTU + 'AMT_PublicKeyManagementService/AddTrustedRootCertificateResponse', 2058);
  await call('AddCertificate of garbage: 2063 INVALID_CERT', amt.PublicKeyManagementService.AddCertificate({ CertificateBlob: 'AAAA' }), AMTU + 'AMT_PublicKeyManagementService/AddCertificateResponse', 2063);
  const leaf = await call('AMT_PublicKeyManagementService.AddCertificate', amt.PublicKeyManagementService.AddCertificate({ CertificateBlob: pemB64('leaf.pem') }), AMTU + 'AMT_PublicKeyManagementService/AddCertificateResponse', 0);
  const leafId = allIds(leaf.body, 'Intel\\(r\\) AMT Certificate: Handle: ')[0];
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const ak = await call('AMT_PublicKeyManagementService.AddKey', amt.PublicKeyManagementService.AddKey(privateKey.export({ type: 'pkcs1', format: 'der' }).toString('base64')), AMTU + 'AMT_PublicKeyManagementService/AddKeyResponse', 0);
  const addedKeyId = allIds(ak.body, 'Intel\\(r\\) AMT Key: Handle: ')[0];
  const certs = await enumPull('AMT_PublicKeyCertificate', amt.PublicKeyCertificate);
  ok('certificates enumerate with handles', certs.includes(rootId) && certs.includes(leafId));
  await call('AMT_PublicKeyCertificate.Get', amt.PublicKeyCertificate.Get({ name: 'InstanceID', value: leafId }), WXF + 'GetResponse');
  await call('AMT_PublicPrivateKeyPair.Delete (AddKey key)', amt.PublicPrivateKeyPair.Delete({ name: 'InstanceID', value: addedKeyId }), WXF + 'DeleteResponse');
  await call('AMT_TLSCredentialContext.Create', amt.TLSCredentialContext.Create(leafId), WXF + 'CreateResponse');
  await callFault('second TLSCredentialContext.Create: AlreadyExists', amt.TLSCredentialContext.Create(leafId), 400, 'AlreadyExists');
  const ctxs = await enumPull('AMT_TLSCredentialContext', amt.TLSCredentialContext);
  ok('credential context names the certificate', ctxs.includes(leafId));
  await callFault('Delete of a certificate in use: InternalError', amt.PublicKeyCertificate.Delete({ name: 'InstanceID', value: leafId }), 500, 'InternalError');
  await enumPull('AMT_TLSSettingData', amt.TLSSettingData);
  await call('AMT_TLSSettingData.Put (802.3: enable TLS)', amt.TLSSettingData.Put({ ElementName: 'Intel(r) AMT 802.3 TLS Settings', InstanceID: 'Intel(r) AMT 802.3 TLS Settings', Enabled: true, MutualAuthentication: false, AcceptNonSecureConnections: true }), WXF + 'PutResponse');
  await call('AMT_TLSSettingData.Put (LMS)', amt.TLSSettingData.Put({ ElementName: 'Intel(r) AMT LMS TLS Settings', InstanceID: 'Intel(r) AMT LMS TLS Settings', Enabled: true, MutualAuthentication: false, AcceptNonSecureConnections: true }), WXF + 'PutResponse');
  let chain = await peerFingerprint();
  ok('before CommitChanges the self-signed certificate is served', chain[0] !== fp(path.join(work, 'leaf.pem')));
  await call('AMT_SetupAndConfigurationService.CommitChanges', amt.SetupAndConfigurationService.CommitChanges(), AMTU + 'AMT_SetupAndConfigurationService/CommitChangesResponse', 0);
  chain = await peerFingerprint();
  ok('after CommitChanges the installed certificate is served', chain[0] === fp(path.join(work, 'leaf.pem')));
  ok('... with its chain (the trusted root from the store)', chain[1] === fp(path.join(work, 'ca.pem')));
  // From here on the client verifies against the test CA, as a console would.
  agent.destroy();
  ca = fs.readFileSync(path.join(work, 'ca.pem'));
  agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca });
  await call('WS-Man over the new certificate, verified by the test CA', amt.GeneralSettings.Get(), WXF + 'GetResponse');

  // ---- Kerberos, redirection, network ------------------------------------------------------------
  await call('AMT_KerberosSettingData.Get', amt.KerberosSettingData.Get(), WXF + 'GetResponse');
  await call('AMT_KerberosSettingData.GetCredentialCacheState', amt.KerberosSettingData.GetCredentialCacheState(), AMTU + 'AMT_KerberosSettingData/GetCredentialCacheStateResponse', 0);
  // wsman-messages 5.14.1 leaves the Enabled argument out: 36 INVALID_PARAMETER is the answer.
  await call('AMT_KerberosSettingData.SetCredentialCacheState (no Enabled sent): 36', amt.KerberosSettingData.SetCredentialCacheState(true), AMTU + 'AMT_KerberosSettingData/SetCredentialCacheStateResponse', 36);
  await call('AMT_RedirectionService.Get', amt.RedirectionService.Get(), WXF + 'GetResponse');
  await call('AMT_RedirectionService.Put', amt.RedirectionService.Put({ Name: 'Intel(r) AMT Redirection Service', CreationClassName: 'AMT_RedirectionService', SystemName: 'Intel(r) AMT', SystemCreationClassName: 'CIM_ComputerSystem', ElementName: 'Intel(r) AMT Redirection Service', ListenerEnabled: true, EnabledState: 32771 }), WXF + 'PutResponse');
  await call('AMT_RedirectionService.RequestStateChange', amt.RedirectionService.RequestStateChange(32770), AMTU + 'AMT_RedirectionService/RequestStateChangeResponse', 0);
  await call('RequestStateChange(7): 5 invalid parameter', amt.RedirectionService.RequestStateChange(7), AMTU + 'AMT_RedirectionService/RequestStateChangeResponse', 5);
  await enumPull('AMT_EthernetPortSettings', amt.EthernetPortSettings);
  await call('AMT_EthernetPortSettings.Get', amt.EthernetPortSettings.Get({ name: 'InstanceID', value: 'Intel(r) AMT Ethernet Port Settings 0' }), WXF + 'GetResponse');
  await call('AMT_EthernetPortSettings.Put (wired DHCP)', amt.EthernetPortSettings.Put({ InstanceID: 'Intel(r) AMT Ethernet Port Settings 0', ElementName: 'Intel(r) AMT Ethernet Port Settings', DHCPEnabled: true, IpSyncEnabled: true, SharedStaticIp: false }), WXF + 'PutResponse');
  await callFault('EthernetPortSettings.Put static without address: InvalidParameter', amt.EthernetPortSettings.Put({ InstanceID: 'Intel(r) AMT Ethernet Port Settings 0', ElementName: 'Intel(r) AMT Ethernet Port Settings', DHCPEnabled: false, IpSyncEnabled: false, SharedStaticIp: false }), 400, 'InvalidParameter');
  await call('AMT_8021XProfile.Get', amt.IEEE8021xProfile.Get(), WXF + 'GetResponse');
  await call('AMT_8021XProfile.Put', amt.IEEE8021xProfile.Put({ ElementName: 'Intel(r) AMT 802.1x Profile', InstanceID: 'Intel(r) AMT 802.1x Profile 0', Enabled: true, AuthenticationProtocol: 2, Username: 'user', Password: 'pw', ServerCertificateName: 'radius.example.com', ServerCertificateNameComparison: 0 }), WXF + 'PutResponse');
  await call('IPS_IEEE8021xSettings.Get', ips.IEEE8021xSettings.Get(), WXF + 'GetResponse');
  await call('IPS_IEEE8021xSettings.Put', ips.IEEE8021xSettings.Put({ ElementName: 'wired8021x', InstanceID: 'Intel(r) AMT: 8021X Settings', Enabled: 2, AuthenticationProtocol: 0, Username: 'dev1', AvailableInS0: true, PxeTimeout: 120 }), WXF + 'PutResponse');
  await call('IPS_IEEE8021xSettings.SetCertificates', ips.IEEE8021xSettings.SetCertificates(rootId, leafId), IPSU + 'IPS_IEEE8021xSettings/SetCertificatesResponse', 0);

  // ---- wireless ----------------------------------------------------------------------------------
  await call('CIM_WiFiPort.Get', cim.WiFiPort.Get(), WXF + 'GetResponse');
  await enumPull('CIM_WiFiPort', cim.WiFiPort);
  await call('CIM_WiFiPort.RequestStateChange(32769)', cim.WiFiPort.RequestStateChange(32769), CIMU + 'CIM_WiFiPort/RequestStateChangeResponse', 0);
  await call('AMT_WiFiPortConfigurationService.Get', amt.WiFiPortConfigurationService.Get(), WXF + 'GetResponse');
  await call('AMT_WiFiPortConfigurationService.Put', amt.WiFiPortConfigurationService.Put({ localProfileSynchronizationEnabled: 3 }), WXF + 'PutResponse');
  await call('AddWiFiSettings (WPA2-PSK)', amt.WiFiPortConfigurationService.AddWiFiSettings({ ElementName: 'home', InstanceID: 'Intel(r) AMT:WiFi Endpoint Settings home', SSID: 'HOME', Priority: 1, AuthenticationMethod: 6, EncryptionMethod: 4, PSKPassPhrase: 'secretpass' }, { name: 'Name', value: 'WiFi Endpoint 0' }), AMTU + 'AMT_WiFiPortConfigurationService/AddWiFiSettingsResponse', 0);
  await call('AddWiFiSettings (WPA2-802.1X EAP-TLS)', amt.WiFiPortConfigurationService.AddWiFiSettings({ ElementName: 'corp', InstanceID: 'Intel(r) AMT:WiFi Endpoint Settings corp', SSID: 'CORP', Priority: 2, AuthenticationMethod: 7, EncryptionMethod: 4 }, { name: 'Name', value: 'WiFi Endpoint 0' }, { ElementName: 'corp', InstanceID: 'Intel(r) AMT 8021X Settings corp', AuthenticationProtocol: 0, Username: 'dev1' }, leafId, rootId), AMTU + 'AMT_WiFiPortConfigurationService/AddWiFiSettingsResponse', 0);
  await call('AddWiFiSettings with WEP: 3 invalid parameter', amt.WiFiPortConfigurationService.AddWiFiSettings({ ElementName: 'wep', InstanceID: 'x', SSID: 'W', Priority: 3, AuthenticationMethod: 3, EncryptionMethod: 2 }, { name: 'Name', value: 'WiFi Endpoint 0' }), AMTU + 'AMT_WiFiPortConfigurationService/AddWiFiSettingsResponse', 3);
  await call('AddWiFiSettings with an unknown CA: 4 invalid reference', amt.WiFiPortConfigurationService.AddWiFiSettings({ ElementName: 'c2', InstanceID: 'x', SSID: 'C2', Priority: 4, AuthenticationMethod: 7, EncryptionMethod: 4 }, { name: 'Name', value: 'WiFi Endpoint 0' }, { ElementName: 'c2', InstanceID: 'y', AuthenticationProtocol: 0, Username: 'dev1' }, leafId, 'Intel(r) AMT Certificate: Handle: 9999'), AMTU + 'AMT_WiFiPortConfigurationService/AddWiFiSettingsResponse', 4);
  let profiles = await enumPull('CIM_WiFiEndpointSettings', cim.WiFiEndpointSettings);
  ok('two IT profiles enumerate', profiles.includes('Settings home') && profiles.includes('Settings corp'));
  const cc = await enumPull('CIM_CredentialContext', cim.CredentialContext);
  ok('credential contexts link the certificates', cc.includes(leafId) && cc.includes(rootId) && cc.includes('CIM_IEEE8021xSettings'));
  await call('CIM_WiFiEndpointSettings.Delete', cim.WiFiEndpointSettings.Delete({ name: 'InstanceID', value: 'Intel(r) AMT:WiFi Endpoint Settings home' }), WXF + 'DeleteResponse');
  profiles = await enumPull('CIM_WiFiEndpointSettings (after Delete)', cim.WiFiEndpointSettings);
  ok('deleted profile is gone', !profiles.includes('Settings home') && profiles.includes('Settings corp'));

  // ---- host-based setup (local-only methods; on a provisioned device: invalid state) -------------
  await call('IPS_HostBasedSetupService.Get', ips.HostBasedSetupService.Get(), WXF + 'GetResponse');
  await call('IPS_HostBasedSetupService.Setup when provisioned: 2 invalid state', ips.HostBasedSetupService.Setup(2, md5(`admin:${realm}:x`)), IPSU + 'IPS_HostBasedSetupService/SetupResponse', 2);
  await call('IPS_HostBasedSetupService.AddNextCertInChain when provisioned: 3 invalid state', ips.HostBasedSetupService.AddNextCertInChain(pemB64('ca.pem'), true, false), IPSU + 'IPS_HostBasedSetupService/AddNextCertInChainResponse', 3);
  await call('IPS_HostBasedSetupService.AdminSetup when provisioned: 2 invalid state', ips.HostBasedSetupService.AdminSetup(2, md5(`admin:${realm}:x`), crypto.randomBytes(20).toString('base64'), 2, 'c2ln'), IPSU + 'IPS_HostBasedSetupService/AdminSetupResponse', 2);

  // ---- faults as AMT sends them --------------------------------------------------------------------
  await callFault('unknown class: DestinationUnreachable', amt.GeneralSettings.Get().replace('AMT_GeneralSettings', 'AMT_NoSuchClass'), 400, 'DestinationUnreachable');
  await callFault('Create on a class without Create: ActionNotSupported', amt.TLSCredentialContext.Create(leafId).replace(/AMT_TLSCredentialContext/g, 'AMT_GeneralSettings'), 400, 'ActionNotSupported');
  await callFault('Delete with an unknown selector: InvalidSelectors', amt.PublicKeyCertificate.Delete({ name: 'InstanceID', value: 'Intel(r) AMT Certificate: Handle: 9999' }), 400, 'InvalidSelectors');

  await call('AMT_SetupAndConfigurationService.Unprovision', amt.SetupAndConfigurationService.Unprovision(1), AMTU + 'AMT_SetupAndConfigurationService/UnprovisionResponse', 0);
  agent.destroy();
  console.log(`wsman-messages conformance: ${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}
main().catch((e) => { console.log(`FAIL - ${e.stack}`); process.exit(1); });
