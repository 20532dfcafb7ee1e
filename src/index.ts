export { createEngine, type FanoutEngineOptions, type SharedParts } from './create-engine.js';
export { Engine } from './core/engine.js';
export type { EngineOptions, TaskHandle } from './core/engine.js';
export type { GatherOptions, GatherOutcome } from './core/gather.js';
export { SystemClock, type Clock } from './contracts/clock.js';
export { seededRandom, systemRandom, type Random } from './contracts/random.js';
export { FanoutError, ProviderError, RetryError, ValidationError } from './contracts/errors.js';
export type { AttemptRecord, ErrorCode } from './contracts/errors.js';
export { isEnd } from './core/events.js';
export type {
  EngineEvent,
  EngineEventType,
  EventError,
  EventListener,
  EventOf,
  EventStreamOptions,
  TaskEndEvent,
  TaskEvent,
} from './core/events.js';
export type { ModelSettings } from './core/models.js';
export type { RetryOptions } from './core/retry.js';
export type { CallTimeouts } from './contracts/provider.js';
export { TASK_STATES, isTerminal, type TaskState } from './contracts/task-state.js';
export type { TaskOutcome, TaskStatus, TimeSplit } from './core/task.js';
export type { ChatMessage, ModelRequest, ModelResult, RateLimitInfo, TaskRequest, Usage } from './contracts/types.js';
export type { AccountingRule } from './contracts/provider.js';
export { MemoryLimiter } from './limits/limiter.js';
export type { Cost, Limiter, LimitSpec, LimitView } from './contracts/limiter.js';
export { createMockProvider, MockProvider } from './providers/mock/mock-provider.js';
export type {
  LatencyProfile,
  MockModelOptions,
  MockProviderOptions,
  MockModelStats,
} from './providers/mock/mock-provider.js';
export type { CallContext, ModelCall, Provider, StreamEvent } from './contracts/provider.js';
export { parseConfig, fanoutConfigSchema, type FanoutConfig } from './config/schema.js';
export { engineOptionsFromConfig } from './config/engine-options.js';
export { runBatch, type BatchOptions, type BatchSummary, type BatchProgress } from './batch/run-batch.js';
export { FanoutEngine } from './create-engine.js';
export {
  checkPipeline,
  resolveInputs,
  pipelineSchema,
  type Pipeline,
  type PipelineSpec,
  type StepSpec,
} from './pipeline/spec.js';
export { loadPipelineFile, type PipelineFile } from './pipeline/load.js';
export {
  runPipeline,
  combine,
  type PipelineRun,
  type RunPipelineOptions,
  type StepResult,
  type CallSpan,
  type ToolFunction,
} from './pipeline/run.js';
export { simulate, type Simulation, type SimulateOptions } from './sim/simulate.js';
export { renderGantt } from './sim/gantt.js';
export type { TaskStore, TaskRow } from './contracts/task-store.js';
export type { CacheStore, CacheEntry } from './contracts/cache-store.js';
export { MemoryCacheStore } from './store/memory/memory-cache-store.js';
export { MemoryTaskStore } from './store/memory/memory-task-store.js';
export {
  OpenAiCompatibleProvider,
  createOpenAiCompatibleProvider,
  type OpenAiCompatibleOptions,
} from './providers/openai-compatible/openai-provider.js';
export { providersFromConfig } from './config/providers.js';
export {
  AnthropicProvider,
  createAnthropicProvider,
  type AnthropicOptions,
} from './providers/anthropic/anthropic-provider.js';
export { BedrockProvider, createBedrockProvider, type BedrockOptions } from './providers/bedrock/bedrock-provider.js';
