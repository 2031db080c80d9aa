/*
 * agent_worker.c: keel-agent-worker, the activity worker of the AI agent
 * example. It runs the fake model and the tools (agent.h) for tasks on the
 * "agent" queue (keel.tasks.agent), recording the tools' changes in an
 * effect log when --effects is given; SIGINT or SIGTERM stops it the way a
 * deploy would (worker_main.h).
 */
#include "agent.h"
#include "worker_main.h"

int main(int argc, char **argv)
{
        const example_worker_t ex = {
            .prog = "keel-agent-worker",
            .task_queue = AGENT_QUEUE,
            .about = "Run the AI agent example's activities (llm, a fake "
                     "model; the tools\nsearchCode, openPullRequest, "
                     "mergePullRequest and undo) for tasks on\n"
                     "keel.tasks." AGENT_QUEUE " ",
            .activities = agent_activities,
            .activities_cnt = agent_activities_cnt};
        return example_worker_main(&ex, argc, argv);
}
