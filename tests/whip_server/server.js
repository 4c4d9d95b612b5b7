// A WHIP server for the tests (RFC 9725): Eyevinn's WHIP endpoint from npm, with its
// "rtmp" plugin, which decodes the published WebRTC stream (libwebrtc, through
// @roamhq/wrtc) and restreams it with FFmpeg to the RTMP URL given in the request.
// Usage: node server.js PORT TOKEN   (TOKEN: the bearer token POSTs must carry)
const { WhipEndpoint } = require("@eyevinn/whip-endpoint");

const port = parseInt(process.argv[2], 10);
// the endpoint compares the whole Authorization header with API_KEY
process.env.API_KEY = `Bearer ${process.argv[3]}`;
const endpoint = new WhipEndpoint({
  port, interfaceIp: "127.0.0.1", enabledWrtcPlugins: ["rtmp"], iceServers: [],
});
endpoint.listen();
