-- Health of a RegenerationCycle (regeneration.weavergen.io/v1alpha1): one DMEDI run (Define,
-- Measure, Explore, Develop, Implement) of the weavergen operator, judged by status.phase. The
-- operator writes the phase in operator/weavergen/k8s/cycles.py and
-- operator/weavergen/domain/decide/cycle_status.py; status.message says what happened in a sentence.
--
--   no status or no phase                 -> Progressing "waiting for the operator to start the cycle"
--   Pending                               -> Progressing "pending: waiting for the first phase"
--   Defining .. Implementing              -> Progressing "Measuring (phase 2 of 5)"
--   RollingBack                           -> Progressing "rolling back: <reason>"
--   AwaitingApproval (propose mode)       -> Suspended "waiting for approval of <strategy>:
--                                            kubectl annotate rcy <name> -n <ns>
--                                            regeneration.weavergen.io/approve=true"
--   Succeeded, NotNeeded                  -> Healthy, status.message
--   Escalated                             -> Degraded "a person must act: ..." (no safe remedy:
--                                            nothing was changed and the workload is still unhealthy)
--   RolledBack                            -> Degraded "rolled back: ..."
--   Failed                                -> Degraded "failed: ..."
--   Aborted                               -> Degraded "aborted: ..." (a person stopped it; the
--                                            snapshot was restored if anything had changed)
--   Rejected                              -> Degraded "rejected: ..." (a person rejected the
--                                            plan; nothing was changed)
--   any other phase                       -> Unknown "unrecognised phase X" (a newer operator)
--
-- status.observedGeneration is not checked: the spec is immutable, so the generation never moves.
-- The script uses only the Lua 5.1 base library (no string or math), so it runs in argocd-cm
-- without resource.customizations.useOpenLibs.

local RUNNING = {
  Defining = "1",
  Measuring = "2",
  Exploring = "3",
  Developing = "4",
  Implementing = "5",
}

local FAILED = {
  Escalated = "a person must act",
  RolledBack = "rolled back",
  Failed = "failed",
  Aborted = "aborted",
  Rejected = "rejected",
}

local function nonEmpty(value)
  return value ~= nil and value ~= ""
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
  local status = obj.status
  if type(status) ~= "table" or not nonEmpty(status.phase) then
    hs.status = "Progressing"
    hs.message = "waiting for the operator to start the cycle"
    return hs
  end
  local phase = tostring(status.phase)
  local message = ""
  if nonEmpty(status.message) then
    message = tostring(status.message)
  end

  if phase == "Succeeded" or phase == "NotNeeded" then
    hs.status = "Healthy"
    if message ~= "" then
      hs.message = message
    elseif phase == "Succeeded" then
      hs.message = "regeneration succeeded"
    else
      hs.message = "entropy is below the level that needs regeneration"
    end
    return hs
  end

  if FAILED[phase] ~= nil then
    hs.status = "Degraded"
    hs.message = FAILED[phase]
    if message ~= "" then
      hs.message = hs.message .. ": " .. message
    end
    return hs
  end

  if phase == "AwaitingApproval" then
    hs.status = "Suspended"
    hs.message = "waiting for approval"
    if nonEmpty(status.chosenStrategy) then
      hs.message = hs.message .. " of " .. tostring(status.chosenStrategy)
    end
    local name = "<name>"
    if nonEmpty(metadata.name) then
      name = tostring(metadata.name)
    end
    hs.message = hs.message .. ": kubectl annotate rcy " .. name
    if nonEmpty(metadata.namespace) then
      hs.message = hs.message .. " -n " .. tostring(metadata.namespace)
    end
    hs.message = hs.message .. " regeneration.weavergen.io/approve=true"
    return hs
  end

  if RUNNING[phase] ~= nil then
    hs.status = "Progressing"
    hs.message = phase .. " (phase " .. RUNNING[phase] .. " of 5)"
    return hs
  end

  if phase == "Pending" then
    hs.status = "Progressing"
    hs.message = "pending: waiting for the first phase"
    return hs
  end

  if phase == "RollingBack" then
    hs.status = "Progressing"
    local why = message
    if type(status.rollback) == "table" and nonEmpty(status.rollback.reason) then
      why = tostring(status.rollback.reason)
    end
    hs.message = "rolling back"
    if why ~= "" then
      hs.message = hs.message .. ": " .. why
    end
    return hs
  end

  hs.status = "Unknown"
  hs.message = "unrecognised phase " .. phase
  return hs
end

return health(obj)
