/*
 * onboarding_worker.c: keel-onboarding-worker, the activity worker of the
 * onboarding example. It runs the onboarding activities (onboarding.h)
 * for tasks on the "onboarding" queue (keel.tasks.onboarding), recording
 * their side effects in an effect log when --effects is given, until
 * SIGINT or SIGTERM (worker_main.h).
 */
#include "onboarding.h"
#include "worker_main.h"

int main(int argc, char **argv)
{
        const example_worker_t ex = {
            .prog = "keel-onboarding-worker",
            .task_queue = ONBOARDING_QUEUE,
            .about = "Run the onboarding example's activities "
                     "(provisionAccount, sendEmail,\ndeprovisionAccount) for "
                     "tasks on keel.tasks." ONBOARDING_QUEUE "\n",
            .activities = onboarding_activities,
            .activities_cnt = onboarding_activities_cnt};
        return example_worker_main(&ex, argc, argv);
}
