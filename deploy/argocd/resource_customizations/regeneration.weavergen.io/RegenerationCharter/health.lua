-- Health of a RegenerationCharter (regeneration.weavergen.io/v1alpha1), from the weavergen
-- operator's status. The operator writes the conditions in operator/weavergen/domain/decide/reconcile.py:
-- Ready (False: UnknownStrategy or MeasurementFailed), InsufficientData (too few spans in the
-- window), Degraded (entropy at or above spec.trigger.level) and CircuitOpen (the operator stopped
-- starting cycles for a cooldown). A window with too few spans, or a failed measurement, leaves the
-- Degraded condition of the last full measurement in place, so Degraded is checked before
-- InsufficientData: a workload that goes quiet after degrading has not recovered.
--
-- First match wins:
--   no status, or status.observedGeneration < metadata.generation
--       -> Progressing "waiting for the operator to observe generation N"
--   Ready False (UnknownStrategy, MeasurementFailed)
--       -> Degraded, the condition's message
--   CircuitOpen True: the operator starts no cycle until the cooldown is over
--       -> Degraded "circuit breaker " .. the condition's message ("open until T: 3 cycles in 3600s")
--   Degraded True and status.activeCycle set
--       -> Progressing "regenerating: cycle X, entropy high (0.65)"
--   Degraded True, no active cycle
--       -> Degraded "entropy high (0.65), trigger at high", plus why no cycle runs (observe mode,
--          manual trigger, or the last cycle's outcome) and a too-thin latest window
--   InsufficientData True
--       -> Progressing "waiting for enough spans: <the condition's message>"
--   Ready True
--       -> Healthy "entropy low (0.05), health 0.95", plus "; cycle X running" while one runs
--   anything else (no conditions yet)
--       -> Progressing "waiting for the first measurement"
--
-- Never Suspended: a charter has no paused state of its own. spec.mode observe and
-- spec.trigger.mode manual are standing configuration, not a wait for a person, and a cycle waiting
-- for approval (propose mode) is not visible in the charter's status: that RegenerationCycle
-- reports Suspended itself.
--
-- Scores are shown rounded to two decimals. The script uses only the Lua 5.1 base library (no
-- string or math), so it runs in argocd-cm without resource.customizations.useOpenLibs.

local function condition(status, kind)
  if type(status.conditions) ~= "table" then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if type(c) == "table" and c.type == kind then
      return c
    end
  end
  return nil
end

local function isTrue(c)
  return c ~= nil and c.status == "True"
end

local function nonEmpty(value)
  return value ~= nil and value ~= ""
end

local function messageOf(c, fallback)
  if c ~= nil and nonEmpty(c.message) then
    return tostring(c.message)
  end
  return fallback
end

local function round2(x)
  local r = x * 100 + 0.5
  r = r - r % 1
  return r / 100
end

local function entropyText(status)
  local e = status.entropy
  if type(e) ~= "table" or not nonEmpty(e.level) then
    return nil
  end
  local text = "entropy " .. tostring(e.level)
  if type(e.score) == "number" then
    text = text .. " (" .. tostring(round2(e.score)) .. ")"
  end
  return text
end

local function health(obj)
  local hs = {}
  if type(obj) ~= "table" then
    obj = {}
  end
  local metadata = obj.metadata
  if type(metadata) ~= "table" then
    metadata = {}
  end
  local spec = obj.spec
  if type(spec) ~= "table" then
    spec = {}
  end
  local trigger = spec.trigger
  if type(trigger) ~= "table" then
    trigger = {}
  end
  local status = obj.status
  local generation = metadata.generation

  if type(status) ~= "table" or type(status.observedGeneration) ~= "number"
      or (type(generation) == "number" and status.observedGeneration < generation) then
    hs.status = "Progressing"
    if type(generation) == "number" then
      hs.message = "waiting for the operator to observe generation " .. tostring(generation)
    else
      hs.message = "waiting for the operator to observe the charter"
    end
    return hs
  end

  local ready = condition(status, "Ready")
  if ready ~= nil and ready.status == "False" then
    hs.status = "Degraded"
    local why = "not ready"
    if nonEmpty(ready.reason) then
      why = why .. ": " .. tostring(ready.reason)
    end
    hs.message = messageOf(ready, why)
    return hs
  end

  local breaker = condition(status, "CircuitOpen")
  if isTrue(breaker) then
    hs.status = "Degraded"
    hs.message = "circuit breaker " .. messageOf(breaker, "open")
    return hs
  end

  local entropy = entropyText(status)
  local degraded = condition(status, "Degraded")
  local insufficient = condition(status, "InsufficientData")
  local active = nil
  if nonEmpty(status.activeCycle) then
    active = tostring(status.activeCycle)
  end

  if isTrue(degraded) then
    if active ~= nil then
      hs.status = "Progressing"
      hs.message = "regenerating: cycle " .. active .. ", " .. (entropy or messageOf(degraded, "entropy high"))
      return hs
    end
    hs.status = "Degraded"
    if entropy ~= nil and nonEmpty(trigger.level) then
      hs.message = entropy .. ", trigger at " .. tostring(trigger.level)
    else
      hs.message = entropy or messageOf(degraded, "entropy at or above the trigger level")
    end
    local last = status.lastCycle
    if spec.mode == "observe" then
      hs.message = hs.message .. "; observe mode: the operator only reports"
    elseif trigger.mode == "manual" then
      hs.message = hs.message .. "; manual trigger: create a RegenerationCycle to regenerate"
    elseif type(last) == "table" and nonEmpty(last.name) and nonEmpty(last.outcome) then
      hs.message = hs.message .. "; last cycle " .. tostring(last.name) .. ": " .. tostring(last.outcome)
    end
    if isTrue(insufficient) and nonEmpty(insufficient.message) then
      hs.message = hs.message .. "; latest window: " .. tostring(insufficient.message)
    end
    return hs
  end

  if isTrue(insufficient) then
    hs.status = "Progressing"
    if nonEmpty(insufficient.message) then
      hs.message = "waiting for enough spans: " .. tostring(insufficient.message)
    else
      hs.message = "waiting for enough spans"
    end
    return hs
  end

  if isTrue(ready) then
    hs.status = "Healthy"
    hs.message = entropy or messageOf(ready, "measured")
    local e = status.entropy
    if entropy ~= nil and type(e.healthScore) == "number" then
      hs.message = hs.message .. ", health " .. tostring(round2(e.healthScore))
    end
    if active ~= nil then
      hs.message = hs.message .. "; cycle " .. active .. " running"
    end
    return hs
  end

  hs.status = "Progressing"
  hs.message = "waiting for the first measurement"
  return hs
end

return health(obj)
