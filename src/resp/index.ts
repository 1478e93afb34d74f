export { RESP_LINE_BYTES_MAX, RespProtocolError, RespRequestParser, splitInline, type RespCommand, type RespParserLimits } from './parser.ts';
export { resp2ToResp3, RespWriter, splitReplies } from './reply.ts';
